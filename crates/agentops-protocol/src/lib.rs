//! Every shape that crosses the journal or a process boundary, as a type
//! that its writers and readers share: journal event bodies ([`event`]),
//! model requests, responses and usage ([`model`]), the harnesses
//! ([`harness`]) and the streams their CLIs print ([`stream`]).
//!
//! A field has one name and one type here; a reader that disagrees with a
//! writer fails to compile instead of reading `null`.

pub mod event;
pub mod harness;
pub mod hook;
pub mod model;
pub mod stream;

pub use event::{BodyError, EventBody};
pub use harness::Harness;
pub use model::{Message, Part, Request, Response, Role, ToolSpec, Usage};
