//! Journal events: the one record type everything else is derived from.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::{RunId, SpanId};

macro_rules! kinds {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// What an event records. Names are dotted (`run.started`). Kinds that
        /// this version does not know are kept as [`EventKind::Other`] so that a
        /// newer writer never breaks an older reader.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventKind {
            $($(#[$doc])* $variant,)*
            /// A kind from a newer or foreign writer, kept verbatim.
            Other(String),
        }

        impl EventKind {
            /// Every kind this version knows, in declaration order.
            pub const KNOWN: &'static [EventKind] = &[$(EventKind::$variant,)*];

            /// The dotted name stored in the journal.
            pub fn as_str(&self) -> &str {
                match self {
                    $(EventKind::$variant => $name,)*
                    EventKind::Other(s) => s,
                }
            }
        }

        impl FromStr for EventKind {
            type Err = EventKindError;
            fn from_str(s: &str) -> Result<Self, EventKindError> {
                match s {
                    $($name => Ok(EventKind::$variant),)*
                    other => {
                        let valid = !other.is_empty()
                            && other.len() <= 64
                            && other.split('.').all(|p| {
                                !p.is_empty()
                                    && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                            });
                        if valid {
                            Ok(EventKind::Other(other.to_owned()))
                        } else {
                            Err(EventKindError(other.to_owned()))
                        }
                    }
                }
            }
        }
    };
}

kinds! {
    /// A workflow run began.
    RunStarted => "run.started",
    /// A run ended (success or failure).
    RunCompleted => "run.completed",
    /// A run stopped to wait for a person or a budget.
    RunPaused => "run.paused",
    /// A paused or crashed run continued.
    RunResumed => "run.resumed",
    /// A step (workflow phase attempt) began.
    StepStarted => "step.started",
    /// A step ended; its checkpoint commit is durable.
    StepCompleted => "step.completed",
    /// One model request and its response.
    LlmCall => "llm.call",
    /// One tool invocation and its result.
    ToolCall => "tool.call",
    /// A gate's verdict with evidence.
    GateVerdict => "gate.verdict",
    /// An approval gate asked a person to decide.
    ApprovalRequested => "approval.requested",
    /// A person approved or rejected.
    ApprovalResolved => "approval.resolved",
    /// A knowledge entry was written (and committed).
    KnowledgeWrite => "knowledge.write",
    /// Feedback on a knowledge entry moved its utility.
    KnowledgeFeedback => "knowledge.feedback",
    /// A context packet was assembled.
    ContextAssembled => "context.assembled",
    /// A harness hook event arrived.
    HookReceived => "hook.received",
    /// A handoff was written for the next session.
    HandoffWritten => "handoff.written",
    /// A hook denied a tool call, blocked a stop, or escalated.
    HookDecision => "hook.decision",
    /// The context guard measured a session's window.
    ContextGuard => "context.guard",
    /// A harness session began (from a stream or transcript).
    SessionStarted => "session.started",
    /// A harness session ended, with its totals.
    SessionEnded => "session.ended",
    /// A phase attempt failed its gates and runs again with feedback.
    StepRetry => "step.retry",
    /// A pause or cancel asked of a running run.
    RunControl => "run.control",
    /// A run's branch was merged into its base.
    RunLanded => "run.landed",
    /// Harness processes a killed run left were stopped on resume.
    RunOrphansStopped => "run.orphans_stopped",
}

/// A dotted event kind that is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "event kind `{0}` is not valid: use dotted lowercase words such as `run.started` (at most 64 characters)"
)]
pub struct EventKindError(pub String);

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An event as it is handed to the journal, before it has a sequence number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Microseconds since the Unix epoch.
    pub ts: i64,
    pub run_id: RunId,
    pub span_id: Option<SpanId>,
    pub parent_span_id: Option<SpanId>,
    pub kind: EventKind,
    pub body: serde_json::Value,
}

impl NewEvent {
    /// An event stamped now, with no span.
    pub fn now(run_id: RunId, kind: EventKind, body: serde_json::Value) -> Self {
        Self {
            ts: crate::time::now_micros(),
            run_id,
            span_id: None,
            parent_span_id: None,
            kind,
            body,
        }
    }

    /// An event at `ts` (µs), with no span.
    pub fn at(ts: i64, run_id: RunId, kind: EventKind, body: serde_json::Value) -> Self {
        Self {
            ts,
            run_id,
            span_id: None,
            parent_span_id: None,
            kind,
            body,
        }
    }

    /// Sets the span and its parent.
    pub fn in_span(mut self, span: SpanId, parent: Option<SpanId>) -> Self {
        self.span_id = Some(span);
        self.parent_span_id = parent;
        self
    }
}

/// An event as stored: with its position in the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Monotonic position in the journal; later events have larger numbers.
    pub seq: i64,
    pub ts: i64,
    pub run_id: RunId,
    pub span_id: Option<SpanId>,
    pub parent_span_id: Option<SpanId>,
    pub kind: EventKind,
    pub body: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn kinds_round_trip() {
        for k in EventKind::KNOWN {
            assert_eq!(k.as_str().parse::<EventKind>().unwrap(), *k);
        }
        assert_eq!(
            "metrics.sample".parse::<EventKind>().unwrap(),
            EventKind::Other("metrics.sample".into())
        );
        assert!("Run Started".parse::<EventKind>().is_err());
        assert!("a..b".parse::<EventKind>().is_err());
        assert!("".parse::<EventKind>().is_err());
    }

    #[test]
    fn event_json_shape() {
        let e = NewEvent {
            ts: 1,
            run_id: RunId::parse("r1").unwrap(),
            span_id: None,
            parent_span_id: None,
            kind: EventKind::ToolCall,
            body: serde_json::json!({"tool": "Bash"}),
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"ts": 1, "run_id": "r1", "span_id": null, "parent_span_id": null, "kind": "tool.call", "body": {"tool": "Bash"}})
        );
    }
}
