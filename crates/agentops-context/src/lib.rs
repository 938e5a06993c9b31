//! Factor II — Context Engineering: a full-text index over `.agents/`, kept
//! current incrementally; ranking by relevance × freshness × utility ×
//! maturity; context packets in tiers within a token budget; feedback; and the
//! context guard that reads how full a harness session's window is.

pub mod catchup;
pub mod eval;
pub mod guard;
pub mod index;
pub mod packet;
pub mod rank;
pub mod relevance;
pub mod render;
pub mod tokens;
pub mod vectors;

pub use index::{Hit, IndexError, KnowledgeIndex, Refresh, SearchFilter};
pub use packet::{Decision, Packet, PacketRequest};
