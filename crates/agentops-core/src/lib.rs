//! Core types shared by every agentops crate: typed ids, journal events,
//! configuration and the one redaction rule set. Nothing here touches the
//! network, git or the store.

pub mod config;
pub mod event;
pub mod ids;
pub mod redact;
pub mod time;
pub mod toml_span;

pub use event::{Event, EventKind, NewEvent};
pub use ids::{EntryId, IdError, RunId, SpanId};

/// `n` and the noun, singular or plural: `1 entry`, `2 entries`. For what
/// people read (`--json` carries the bare numbers).
pub fn counted(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}
