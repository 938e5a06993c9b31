//! The fields of an event body that spans use, parsed straight from the
//! journal's JSON text (or from a parsed `Value`) without building a tree:
//! unknown keys — model responses, tool inputs — are skipped by the parser,
//! strings are borrowed where they have no escapes.
//!
//! Parsing is lenient the way `Value::as_str`/`as_f64` are: a field of an
//! unexpected type reads as absent instead of failing the event.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A JSON scalar, or nothing (absent, null, an object or an array).
#[derive(Debug, Default, Clone, PartialEq)]
pub enum Scalar<'a> {
    #[default]
    None,
    Str(Cow<'a, str>),
    Int(i64),
    Uint(u64),
    Float(f64),
    Bool(bool),
}

impl Scalar<'_> {
    /// A non-empty string.
    pub fn str(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) if !s.is_empty() => Some(s),
            _ => None,
        }
    }

    /// Any number, as `Value::as_f64`.
    pub fn f64(&self) -> Option<f64> {
        match *self {
            Scalar::Int(i) => Some(i as f64),
            Scalar::Uint(u) => Some(u as f64),
            Scalar::Float(f) => Some(f),
            _ => None,
        }
    }

    /// An integer that fits, as `Value::as_i64`.
    pub fn i64(&self) -> Option<i64> {
        match *self {
            Scalar::Int(i) => Some(i),
            Scalar::Uint(u) => i64::try_from(u).ok(),
            _ => None,
        }
    }

    pub fn bool(&self) -> Option<bool> {
        match *self {
            Scalar::Bool(b) => Some(b),
            _ => None,
        }
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Uint(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::None)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
        while s.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::None)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// Visitor methods that read every non-container JSON value as `$none`.
macro_rules! scalars_as {
    ($none:expr) => {
        fn visit_borrowed_str<E>(self, _: &'de str) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok($none)
        }
    };
}

/// An object field: `None` when absent or not an object.
#[derive(Debug, Clone, PartialEq)]
pub struct Obj<T>(pub Option<T>);

impl<T> Default for Obj<T> {
    fn default() -> Self {
        Obj(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(m)).map(|t| Obj(Some(t)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Obj(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            scalars_as!(Obj(None));
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// The first element of an array field, when it is a scalar.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct First<'a>(pub Scalar<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for First<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = First<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                let first = s.next_element::<Scalar<'de>>()?.unwrap_or_default();
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(First(first))
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Self::Value, A::Error> {
                ScalarVisitor.visit_map(m).map(|_| First(Scalar::None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            scalars_as!(First::default());
        }
        d.deserialize_any(V)
    }
}

/// `{"name": …}` (a run's workflow).
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct Named<'a> {
    #[serde(borrow)]
    pub name: Scalar<'a>,
}

/// Token usage as every event records it (input includes cached tokens).
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct Usage<'a> {
    #[serde(borrow)]
    pub input_tokens: Scalar<'a>,
    #[serde(borrow)]
    pub output_tokens: Scalar<'a>,
    #[serde(borrow)]
    pub cache_read_tokens: Scalar<'a>,
    #[serde(borrow)]
    pub cache_creation_tokens: Scalar<'a>,
}

impl Usage<'_> {
    /// (input, output, cache read, cache creation), 0 where absent.
    pub fn counts(&self) -> (i64, i64, i64, i64) {
        let n = |s: &Scalar<'_>| s.i64().unwrap_or(0);
        (
            n(&self.input_tokens),
            n(&self.output_tokens),
            n(&self.cache_read_tokens),
            n(&self.cache_creation_tokens),
        )
    }
}

/// Every body key a span reads, across event kinds.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct Body<'a> {
    #[serde(borrow)]
    pub workflow: Obj<Named<'a>>,
    #[serde(borrow)]
    pub usage: Obj<Usage<'a>>,
    #[serde(borrow)]
    pub errors: First<'a>,
    #[serde(borrow)]
    pub agent: Scalar<'a>,
    #[serde(borrow)]
    pub attempt: Scalar<'a>,
    #[serde(borrow)]
    pub band: Scalar<'a>,
    #[serde(borrow)]
    pub base_commit: Scalar<'a>,
    #[serde(borrow)]
    pub command: Scalar<'a>,
    #[serde(borrow)]
    pub commit: Scalar<'a>,
    #[serde(borrow)]
    pub cost_usd: Scalar<'a>,
    #[serde(borrow)]
    pub decision: Scalar<'a>,
    #[serde(borrow)]
    pub detail: Scalar<'a>,
    #[serde(borrow)]
    pub duration_ms: Scalar<'a>,
    #[serde(borrow)]
    pub error: Scalar<'a>,
    #[serde(borrow)]
    pub error_type: Scalar<'a>,
    #[serde(borrow)]
    pub event: Scalar<'a>,
    #[serde(borrow)]
    pub feedback: Scalar<'a>,
    #[serde(borrow)]
    pub gate: Scalar<'a>,
    #[serde(borrow)]
    pub goal: Scalar<'a>,
    #[serde(borrow)]
    pub harness: Scalar<'a>,
    #[serde(borrow)]
    pub is_error: Scalar<'a>,
    #[serde(borrow)]
    pub kind: Scalar<'a>,
    #[serde(borrow)]
    pub model: Scalar<'a>,
    #[serde(borrow)]
    pub name: Scalar<'a>,
    #[serde(borrow)]
    pub ok: Scalar<'a>,
    #[serde(borrow)]
    pub operation: Scalar<'a>,
    #[serde(borrow)]
    pub output: Scalar<'a>,
    #[serde(borrow)]
    pub path: Scalar<'a>,
    #[serde(borrow)]
    pub pending: Scalar<'a>,
    #[serde(borrow)]
    pub percent: Scalar<'a>,
    #[serde(borrow)]
    pub phase: Scalar<'a>,
    #[serde(borrow)]
    pub provider: Scalar<'a>,
    #[serde(borrow)]
    pub reason: Scalar<'a>,
    #[serde(borrow)]
    pub response_id: Scalar<'a>,
    #[serde(borrow)]
    pub response_model: Scalar<'a>,
    #[serde(borrow)]
    pub status: Scalar<'a>,
    #[serde(borrow)]
    pub stop_reason: Scalar<'a>,
    #[serde(borrow)]
    pub summary: Scalar<'a>,
    #[serde(borrow)]
    pub tool: Scalar<'a>,
    #[serde(borrow)]
    pub tool_use_id: Scalar<'a>,
    #[serde(borrow)]
    pub verdict: Scalar<'a>,
}

impl<'a> Body<'a> {
    /// Parses JSON text. A body that is valid JSON but not an object, or has
    /// a key twice, goes through `Value` (the last duplicate wins, as in the
    /// rest of agentops); `None` when the text is not JSON.
    pub fn parse(text: &'a str) -> Option<Body<'a>> {
        match serde_json::from_str::<Body<'a>>(text) {
            Ok(b) => Some(b),
            Err(_) => {
                let v: serde_json::Value = serde_json::from_str(text).ok()?;
                Some(Body::from_value(&v).into_owned())
            }
        }
    }

    /// From a parsed body (anything but an object gives an empty body).
    pub fn from_value(v: &'a serde_json::Value) -> Body<'a> {
        Body::deserialize(v).unwrap_or_default()
    }

    /// The same body owning its strings.
    pub fn into_owned(self) -> Body<'static> {
        fn s(x: Scalar<'_>) -> Scalar<'static> {
            match x {
                Scalar::None => Scalar::None,
                Scalar::Str(c) => Scalar::Str(Cow::Owned(c.into_owned())),
                Scalar::Int(i) => Scalar::Int(i),
                Scalar::Uint(u) => Scalar::Uint(u),
                Scalar::Float(f) => Scalar::Float(f),
                Scalar::Bool(b) => Scalar::Bool(b),
            }
        }
        Body {
            workflow: Obj(self.workflow.0.map(|n| Named { name: s(n.name) })),
            usage: Obj(self.usage.0.map(|u| Usage {
                input_tokens: s(u.input_tokens),
                output_tokens: s(u.output_tokens),
                cache_read_tokens: s(u.cache_read_tokens),
                cache_creation_tokens: s(u.cache_creation_tokens),
            })),
            errors: First(s(self.errors.0)),
            agent: s(self.agent),
            attempt: s(self.attempt),
            band: s(self.band),
            base_commit: s(self.base_commit),
            command: s(self.command),
            commit: s(self.commit),
            cost_usd: s(self.cost_usd),
            decision: s(self.decision),
            detail: s(self.detail),
            duration_ms: s(self.duration_ms),
            error: s(self.error),
            error_type: s(self.error_type),
            event: s(self.event),
            feedback: s(self.feedback),
            gate: s(self.gate),
            goal: s(self.goal),
            harness: s(self.harness),
            is_error: s(self.is_error),
            kind: s(self.kind),
            model: s(self.model),
            name: s(self.name),
            ok: s(self.ok),
            operation: s(self.operation),
            output: s(self.output),
            path: s(self.path),
            pending: s(self.pending),
            percent: s(self.percent),
            phase: s(self.phase),
            provider: s(self.provider),
            reason: s(self.reason),
            response_id: s(self.response_id),
            response_model: s(self.response_model),
            status: s(self.status),
            stop_reason: s(self.stop_reason),
            summary: s(self.summary),
            tool: s(self.tool),
            tool_use_id: s(self.tool_use_id),
            verdict: s(self.verdict),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_and_value_agree_and_are_lenient() {
        let v = json!({
            "model": "gpt-4.1", "attempt": 2, "cost_usd": 0.5, "is_error": true,
            "usage": {"input_tokens": 10, "output_tokens": 2.5},
            "workflow": {"name": "feature", "extra": [1, {"a": 2}]},
            "errors": ["first \"quoted\"", "second"],
            "response": {"content": [{"text": "x".repeat(100)}]},
            "agent": {"not": "a string"}, "phase": "", "status": null,
            "gate": 3, "percent": 41
        });
        let text = v.to_string();
        let a = Body::parse(&text).unwrap();
        let b = Body::from_value(&v);
        assert_eq!(a, b);
        assert_eq!(a.model.str(), Some("gpt-4.1"));
        assert_eq!(a.attempt.i64(), Some(2));
        assert_eq!(a.cost_usd.f64(), Some(0.5));
        assert_eq!(a.percent.f64(), Some(41.0));
        assert_eq!(a.is_error.bool(), Some(true));
        let u = a.usage.0.as_ref().unwrap();
        assert_eq!(u.counts(), (10, 0, 0, 0), "a float count reads as absent");
        assert_eq!(a.workflow.0.as_ref().unwrap().name.str(), Some("feature"));
        assert_eq!(a.errors.0.str(), Some("first \"quoted\""));
        assert_eq!(a.agent.str(), None);
        assert_eq!(a.phase.str(), None, "empty strings read as absent");
        assert_eq!(a.status, Scalar::None);
        assert_eq!(a.gate.str(), None);
    }

    #[test]
    fn odd_bodies() {
        // A duplicate key: the last one wins, as with Value.
        let b = Body::parse(r#"{"model": "a", "model": "b"}"#).unwrap();
        assert_eq!(b.model.str(), Some("b"));
        // Not an object, or not JSON.
        assert_eq!(Body::parse("[1, 2]").unwrap(), Body::default());
        assert_eq!(Body::parse("\"text\"").unwrap(), Body::default());
        assert!(Body::parse("{not json").is_none());
        // Wrong shapes read as absent.
        let b = Body::parse(r#"{"usage": "lots", "workflow": 3, "errors": {"a": 1}}"#).unwrap();
        assert_eq!(b.usage.0, None);
        assert_eq!(b.workflow.0, None);
        assert_eq!(b.errors.0, Scalar::None);
    }

    /// The fast reader and the protocol's writers agree on names and types:
    /// what today's writers store is what spans read.
    #[test]
    fn reads_what_the_protocol_writes() {
        use agentops_protocol::event as p;
        let tool = serde_json::to_value(p::ToolCall {
            name: "Bash".into(),
            is_error: true,
            error: Some("exit 1".into()),
            duration_ms: Some(12.5),
            agent: Some("coder".into()),
            command: Some("false".into()),
            ..p::ToolCall::default()
        })
        .unwrap();
        let b = Body::from_value(&tool);
        assert_eq!(
            (
                b.name.str(),
                b.is_error.bool(),
                b.error.str(),
                b.duration_ms.f64()
            ),
            (Some("Bash"), Some(true), Some("exit 1"), Some(12.5))
        );
        assert_eq!(
            (b.agent.str(), b.command.str()),
            (Some("coder"), Some("false"))
        );
        let call = serde_json::to_value(p::LlmCall {
            model: Some("gpt-4.1".into()),
            agent: Some("planner".into()),
            usage: agentops_protocol::Usage {
                input_tokens: 10,
                output_tokens: 3,
                cache_read_tokens: 4,
                cache_creation_tokens: 1,
            },
            cost_usd: Some(0.25),
            duration_ms: Some(40.0),
            error_type: Some("rate_limit".into()),
            ..p::LlmCall::default()
        })
        .unwrap();
        let b = Body::from_value(&call);
        assert_eq!(b.usage.0.as_ref().unwrap().counts(), (10, 3, 4, 1));
        assert_eq!(
            (
                b.model.str(),
                b.agent.str(),
                b.cost_usd.f64(),
                b.error_type.str()
            ),
            (
                Some("gpt-4.1"),
                Some("planner"),
                Some(0.25),
                Some("rate_limit")
            )
        );
        let gate = serde_json::to_value(p::GateVerdict {
            gate: "tests".into(),
            kind: p::GateKind::Command,
            verdict: p::Verdict::Fail,
            summary: "1 failed".into(),
            evidence: serde_json::Value::Null,
            duration_ms: 5.0,
            started_us: 1,
            base: None,
            pending: false,
            agent: None,
        })
        .unwrap();
        let b = Body::from_value(&gate);
        assert_eq!(
            (
                b.gate.str(),
                b.verdict.str(),
                b.kind.str(),
                b.pending.bool()
            ),
            (Some("tests"), Some("FAIL"), Some("command"), Some(false))
        );
        let guard = serde_json::to_value(p::ContextGuard {
            harness: agentops_protocol::Harness::Codex,
            used: 90,
            window: 200,
            percent: 45.0,
            band: "red".into(),
            model: None,
        })
        .unwrap();
        let b = Body::from_value(&guard);
        assert_eq!(
            (b.harness.str(), b.percent.f64(), b.band.str()),
            (Some("codex"), Some(45.0), Some("red"))
        );
    }
}
