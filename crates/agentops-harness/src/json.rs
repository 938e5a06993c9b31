//! A JSON value that keeps its keys in file order, so that a settings file we
//! merge into is written back the way its owner wrote it.
//!
//! `serde_json`'s own `Value` sorts keys unless the crate-wide
//! `preserve_order` feature is on, which would change every other crate's
//! output; this small type keeps the change local.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// A JSON value with ordered objects.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Json> {
        match self {
            Json::Object(m) => m.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn str(s: &str) -> Json {
        Json::String(s.to_owned())
    }

    pub fn int(n: u64) -> Json {
        Json::Number(n.into())
    }

    /// Removes `key` from an object; returns whether it was there.
    pub fn remove(&mut self, key: &str) -> bool {
        if let Json::Object(m) = self {
            let before = m.len();
            m.retain(|(k, _)| k != key);
            return m.len() != before;
        }
        false
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Number(n) => n.serialize(s),
            Json::String(v) => s.serialize_str(v),
            Json::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Json::Object(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        serde_json::Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| E::custom("a number JSON cannot hold"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Json, A::Error> {
        let mut v = Vec::new();
        while let Some(x) = a.next_element()? {
            v.push(x);
        }
        Ok(Json::Array(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Json, A::Error> {
        let mut m = Vec::new();
        while let Some((k, v)) = a.next_entry::<String, Json>()? {
            m.push((k, v));
        }
        Ok(Json::Object(m))
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

/// The indentation a pretty-printed JSON text uses (two spaces when it cannot
/// tell).
pub fn detect_indent(text: &str) -> String {
    for line in text.lines().skip(1) {
        let ws: String = line
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .collect();
        if !ws.is_empty() {
            return ws;
        }
    }
    "  ".to_owned()
}

/// Pretty-prints `v` with `indent`, the way `JSON.stringify(v, null, indent)`
/// does (the form Claude Code and Codex write their settings in).
pub fn to_pretty(v: &Json, indent: &str) -> Result<String, serde_json::Error> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    v.serialize(&mut ser)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// One member of an object as it stands in the text: its key, where the
/// member starts (the key's opening quote) and where its value starts and ends.
#[derive(Debug, Clone, PartialEq)]
struct Member {
    key: String,
    start: usize,
    value: (usize, usize),
}

/// The members of the object whose text starts at `at` (`{`), and the index
/// of its closing `}`; `None` when the text is not such an object.
fn members(text: &str, at: usize) -> Option<(Vec<Member>, usize)> {
    let b = text.as_bytes();
    let ws = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let string_end = |mut i: usize| {
        // `i` at the opening quote; returns the index after the closing one.
        i += 1;
        while i < b.len() {
            match b[i] {
                b'\\' => i += 2,
                b'"' => return Some(i + 1),
                _ => i += 1,
            }
        }
        None
    };
    let value_end = |mut i: usize| {
        let mut depth = 0usize;
        while i < b.len() {
            match b[i] {
                b'"' => {
                    i = string_end(i)?;
                    if depth == 0 {
                        return Some(i);
                    }
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    if depth == 0 {
                        return Some(i);
                    }
                    depth -= 1;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                b',' if depth == 0 => return Some(i),
                c if depth == 0 && c.is_ascii_whitespace() => return Some(i),
                _ => {}
            }
            i += 1;
        }
        Some(i)
    };
    let mut i = ws(at);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = ws(i + 1);
    let mut out = Vec::new();
    loop {
        match b.get(i)? {
            b'}' => return Some((out, i)),
            b'"' => {
                let start = i;
                let end = string_end(i)?;
                let key: String = serde_json::from_str(&text[start..end]).ok()?;
                i = ws(end);
                if b.get(i) != Some(&b':') {
                    return None;
                }
                let vs = ws(i + 1);
                let ve = value_end(vs)?;
                out.push(Member {
                    key,
                    start,
                    value: (vs, ve),
                });
                i = ws(ve);
                if b.get(i) == Some(&b',') {
                    i = ws(i + 1);
                }
            }
            _ => return None,
        }
    }
}

/// `v` pretty-printed for a place `depth` levels deep: its lines after the
/// first carry that depth's indentation.
fn pretty_at(v: &Json, indent: &str, depth: usize) -> Result<String, serde_json::Error> {
    let text = to_pretty(v, indent)?;
    let pad = indent.repeat(depth);
    Ok(text.replace('\n', &format!("\n{pad}")))
}

/// Rewrites the object `old_text` (parsed as `old`) into `new` changing only
/// what differs: members equal in both keep their original bytes, members
/// gone are cut out with their separator, members added are appended in the
/// object's own style, and a changed member whose value is an object in both
/// (down to `deep` levels) is rewritten the same way; other changed values
/// are pretty-printed at their depth. `None` when the text cannot be
/// followed (the caller then renders the whole file).
pub fn rewrite_object(
    old_text: &str,
    old: &Json,
    new: &Json,
    indent: &str,
    deep: usize,
) -> Option<String> {
    rewrite_at(old_text, 0, old, new, indent, 0, deep)
}

fn rewrite_at(
    text: &str,
    at: usize,
    old: &Json,
    new: &Json,
    indent: &str,
    depth: usize,
    deep: usize,
) -> Option<String> {
    let (Json::Object(om), Json::Object(nm)) = (old, new) else {
        return None;
    };
    let (spans, close) = members(text, at)?;
    if spans.len() != om.len() || spans.iter().zip(om).any(|(s, (k, _))| &s.key != k) {
        return None;
    }
    let open = text[at..].find('{')? + at;
    // Kept members must stay in their order; new ones come after them.
    let kept: Vec<&String> = nm
        .iter()
        .map(|(k, _)| k)
        .filter(|k| om.iter().any(|(o, _)| o == *k))
        .collect();
    let old_order: Vec<&String> = om
        .iter()
        .map(|(k, _)| k)
        .filter(|k| nm.iter().any(|(n, _)| n == *k))
        .collect();
    if kept != old_order {
        return None;
    }
    let multiline = text[open..close].contains('\n');
    let mut parts: Vec<String> = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        let Some((_, nv)) = nm.iter().find(|(k, _)| *k == span.key) else {
            continue;
        };
        let ov = &om[i].1;
        let value = if ov == nv {
            text[span.value.0..span.value.1].to_owned()
        } else if deep > 0 && matches!((ov, nv), (Json::Object(_), Json::Object(_))) {
            let inner = rewrite_at(text, span.value.0, ov, nv, indent, depth + 1, deep - 1)?;
            inner[span.value.0..inner.len() - (text.len() - span.value.1)].to_owned()
        } else {
            pretty_at(nv, indent, depth + 1).ok()?
        };
        parts.push(format!("{}{value}", &text[span.start..span.value.0]));
    }
    let pad = indent.repeat(depth + 1);
    for (k, v) in nm.iter().filter(|(k, _)| !om.iter().any(|(o, _)| o == k)) {
        let key = serde_json::to_string(k).ok()?;
        let value = if multiline || spans.is_empty() {
            pretty_at(v, indent, depth + 1).ok()?
        } else {
            serde_json::to_string(v).ok()?
        };
        parts.push(format!("{key}: {value}"));
    }
    // The separators and the space around them, as the object had them.
    let (lead, sep, trail) = match (spans.first(), spans.last()) {
        (Some(f), Some(l)) => {
            let sep = if spans.len() > 1 {
                text[spans[0].value.1..spans[1].start].to_owned()
            } else if multiline {
                format!(",\n{pad}")
            } else {
                ", ".to_owned()
            };
            (
                text[open + 1..f.start].to_owned(),
                sep,
                text[l.value.1..close].to_owned(),
            )
        }
        _ => (
            format!("\n{pad}"),
            format!(",\n{pad}"),
            format!("\n{}", indent.repeat(depth)),
        ),
    };
    let body = if parts.is_empty() {
        String::new()
    } else {
        format!("{lead}{}{trail}", parts.join(&sep))
    };
    Some(format!("{}{{{body}}}{}", &text[..open], &text[close + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn round_trips_in_file_order() {
        let text = "{\n  \"z\": 1,\n  \"a\": [\n    true,\n    null,\n    1.5,\n    \"é\"\n  ],\n  \"m\": {}\n}";
        let v: Json = serde_json::from_str(text).unwrap_or(Json::Null);
        assert_eq!(
            to_pretty(&v, &detect_indent(text)).ok().as_deref(),
            Some(text)
        );
    }
}
