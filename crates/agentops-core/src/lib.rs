//! Core types shared by every agentops crate: typed ids, journal events,
//! configuration and the one redaction rule set. Nothing here touches the
//! network, git or the store.

pub mod config;
pub mod event;
pub mod ids;
pub mod redact;
pub mod time;

pub use event::{Event, EventKind, NewEvent};
pub use ids::{EntryId, IdError, RunId, SpanId};
