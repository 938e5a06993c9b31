//! OTLP/HTTP trace payloads, encoded by hand: `ExportTraceServiceRequest` as
//! protobuf (`application/x-protobuf`) or as OTLP/JSON (`application/json`:
//! hex ids, integer enums, 64-bit integers as strings), plus a small decoder
//! of the protobuf form for tests and the benchmark's receiver.

use serde_json::{Value, json};

use crate::span::{AttrValue, Span, SpanEvent, hex};

/// The wire form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Protobuf,
    Json,
}

impl Protocol {
    /// `http/protobuf` or `http/json` (the names of
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "http/protobuf" | "protobuf" => Some(Protocol::Protobuf),
            "http/json" | "json" => Some(Protocol::Json),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Protobuf => "http/protobuf",
            Protocol::Json => "http/json",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Protocol::Protobuf => "application/x-protobuf",
            Protocol::Json => "application/json",
        }
    }
}

/// Who sent the spans: the OTLP resource and scope.
#[derive(Debug, Clone)]
pub struct Resource {
    pub service_name: String,
    /// `openinference.project.name`: the Phoenix project.
    pub project: String,
    pub version: String,
}

impl Default for Resource {
    fn default() -> Self {
        Self {
            service_name: "agentops".into(),
            project: "agentops".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// Encodes `spans` in `protocol`.
pub fn encode(protocol: Protocol, resource: &Resource, spans: &[&Span]) -> Vec<u8> {
    match protocol {
        Protocol::Protobuf => encode_proto(resource, spans),
        Protocol::Json => encode_json(resource, spans).to_string().into_bytes(),
    }
}

// --- protobuf -------------------------------------------------------------

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn bytes_field(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    tag(out, field, 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn fixed64(out: &mut Vec<u8>, field: u32, v: u64) {
    tag(out, field, 1);
    out.extend_from_slice(&v.to_le_bytes());
}

/// Writes a length-delimited submessage built by `f` (length patched in).
fn message(out: &mut Vec<u8>, field: u32, f: impl FnOnce(&mut Vec<u8>)) {
    tag(out, field, 2);
    let start = out.len();
    // Reserve 1 byte for the length; shift the body when it needs more.
    out.push(0);
    f(out);
    let len = out.len() - start - 1;
    if len < 0x80 {
        out[start] = len as u8;
    } else {
        let mut l = Vec::with_capacity(5);
        varint(&mut l, len as u64);
        out.splice(start..start + 1, l);
    }
}

fn any_value(out: &mut Vec<u8>, v: &AttrValue) {
    match v {
        AttrValue::Str(s) => bytes_field(out, 1, s.as_bytes()),
        AttrValue::Bool(b) => {
            tag(out, 2, 0);
            varint(out, u64::from(*b));
        }
        AttrValue::Int(i) => {
            tag(out, 3, 0);
            varint(out, *i as u64);
        }
        AttrValue::F64(f) => fixed64(out, 4, f.to_bits()),
        AttrValue::StrArray(a) => message(out, 5, |out| {
            for s in a {
                message(out, 1, |out| bytes_field(out, 1, s.as_bytes()));
            }
        }),
    }
}

fn key_value(out: &mut Vec<u8>, field: u32, k: &str, v: &AttrValue) {
    message(out, field, |out| {
        bytes_field(out, 1, k.as_bytes());
        message(out, 2, |out| any_value(out, v));
    });
}

fn nanos(us: i64) -> u64 {
    u64::try_from(us).unwrap_or(0).saturating_mul(1000)
}

fn span_proto(out: &mut Vec<u8>, sp: &Span) {
    message(out, 2, |out| {
        bytes_field(out, 1, &sp.trace_id);
        bytes_field(out, 2, &sp.span_id);
        if let Some(p) = &sp.parent_span_id {
            bytes_field(out, 4, p);
        }
        bytes_field(out, 5, sp.name.as_bytes());
        tag(out, 6, 0);
        varint(out, span_kind(sp));
        fixed64(out, 7, nanos(sp.start_us));
        fixed64(out, 8, nanos(sp.end_us));
        for (k, v) in &sp.attrs {
            key_value(out, 9, k, v);
        }
        for ev in &sp.events {
            event_proto(out, ev);
        }
        message(out, 15, |out| {
            if let Some(m) = &sp.error {
                bytes_field(out, 2, m.as_bytes());
            }
            tag(out, 3, 0);
            varint(out, if sp.error.is_some() { 2 } else { 1 });
        });
    });
}

fn event_proto(out: &mut Vec<u8>, ev: &SpanEvent) {
    message(out, 11, |out| {
        fixed64(out, 1, nanos(ev.ts_us));
        bytes_field(out, 2, ev.name.as_bytes());
        for (k, v) in &ev.attrs {
            key_value(out, 3, k, v);
        }
    });
}

/// Client for model calls (a remote service), internal otherwise.
fn span_kind(sp: &Span) -> u64 {
    match sp.kind {
        crate::span::SpanKind::Llm => 3,
        _ => 1,
    }
}

fn resource_attrs(r: &Resource) -> [(&'static str, AttrValue); 4] {
    [
        ("service.name", r.service_name.as_str().into()),
        ("service.version", r.version.as_str().into()),
        ("openinference.project.name", r.project.as_str().into()),
        ("telemetry.sdk.name", "agentops".into()),
    ]
}

fn encode_proto(r: &Resource, spans: &[&Span]) -> Vec<u8> {
    let mut out = Vec::with_capacity(spans.len() * 700 + 256);
    message(&mut out, 1, |out| {
        message(out, 1, |out| {
            for (k, v) in resource_attrs(r) {
                key_value(out, 1, k, &v);
            }
        });
        message(out, 2, |out| {
            message(out, 1, |out| {
                bytes_field(out, 1, b"agentops");
                bytes_field(out, 2, r.version.as_bytes());
            });
            for sp in spans {
                span_proto(out, sp);
            }
        });
    });
    out
}

// --- JSON -----------------------------------------------------------------

fn any_json(v: &AttrValue) -> Value {
    match v {
        AttrValue::Str(s) => json!({ "stringValue": s }),
        AttrValue::Bool(b) => json!({ "boolValue": b }),
        AttrValue::Int(i) => json!({ "intValue": i.to_string() }),
        AttrValue::F64(f) => json!({ "doubleValue": f }),
        AttrValue::StrArray(a) => {
            json!({ "arrayValue": { "values": a.iter().map(|s| json!({"stringValue": s})).collect::<Vec<_>>() } })
        }
    }
}

fn attrs_json<'a>(a: impl IntoIterator<Item = (&'a str, &'a AttrValue)>) -> Value {
    Value::Array(
        a.into_iter()
            .map(|(k, v)| json!({ "key": k, "value": any_json(v) }))
            .collect(),
    )
}

fn encode_json(r: &Resource, spans: &[&Span]) -> Value {
    let res = resource_attrs(r);
    let spans: Vec<Value> = spans
        .iter()
        .map(|sp| {
            let mut s = json!({
                "traceId": hex(&sp.trace_id),
                "spanId": hex(&sp.span_id),
                "name": sp.name,
                "kind": span_kind(sp),
                "startTimeUnixNano": nanos(sp.start_us).to_string(),
                "endTimeUnixNano": nanos(sp.end_us).to_string(),
                "attributes": attrs_json(sp.attrs.iter().map(|(k, v)| (*k, v))),
                "events": sp.events.iter().map(|e| json!({
                    "timeUnixNano": nanos(e.ts_us).to_string(),
                    "name": e.name,
                    "attributes": attrs_json(e.attrs.iter().map(|(k, v)| (*k, v))),
                })).collect::<Vec<_>>(),
                "status": match &sp.error {
                    Some(m) => json!({"code": 2, "message": m}),
                    None => json!({"code": 1}),
                },
            });
            if let Some(p) = &sp.parent_span_id {
                s["parentSpanId"] = Value::from(hex(p));
            }
            s
        })
        .collect();
    json!({
        "resourceSpans": [{
            "resource": { "attributes": attrs_json(res.iter().map(|(k, v)| (*k, v))) },
            "scopeSpans": [{
                "scope": { "name": "agentops", "version": r.version },
                "spans": spans,
            }],
        }]
    })
}

// --- decoding (tests, benchmark receiver) ---------------------------------

/// A span as read back from a payload: (trace id, span id, parent, name).
pub type Decoded = ([u8; 16], [u8; 8], Option<[u8; 8]>, String);

fn read_varint(b: &[u8], i: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let byte = *b.get(*i)?;
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(v);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

/// Iterates (field, wire type, payload) of one message level.
fn fields(b: &[u8]) -> Option<Vec<(u32, u8, &[u8])>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let t = read_varint(b, &mut i)?;
        let (field, wire) = (u32::try_from(t >> 3).ok()?, (t & 7) as u8);
        let start = i;
        match wire {
            0 => {
                read_varint(b, &mut i)?;
            }
            1 => i += 8,
            2 => {
                let len = usize::try_from(read_varint(b, &mut i)?).ok()?;
                let s = i;
                i += len;
                if i > b.len() {
                    return None;
                }
                out.push((field, wire, &b[s..i]));
                continue;
            }
            5 => i += 4,
            _ => return None,
        }
        if i > b.len() {
            return None;
        }
        out.push((field, wire, &b[start..i]));
    }
    Some(out)
}

/// Reads the spans of a protobuf `ExportTraceServiceRequest`; `None` when
/// it is not well formed.
pub fn decode_proto(b: &[u8]) -> Option<Vec<Decoded>> {
    let mut out = Vec::new();
    for (f1, _, rs) in fields(b)? {
        if f1 != 1 {
            continue;
        }
        for (f2, _, ss) in fields(rs)? {
            if f2 != 2 {
                continue;
            }
            for (f3, _, sp) in fields(ss)? {
                if f3 != 2 {
                    continue;
                }
                let (mut t, mut s, mut p, mut name) = ([0u8; 16], [0u8; 8], None, String::new());
                for (f, _, v) in fields(sp)? {
                    match f {
                        1 => t = v.try_into().ok()?,
                        2 => s = v.try_into().ok()?,
                        4 if !v.is_empty() => p = Some(v.try_into().ok()?),
                        5 => name = String::from_utf8(v.to_vec()).ok()?,
                        _ => {}
                    }
                }
                out.push((t, s, p, name));
            }
        }
    }
    Some(out)
}

/// Reads the spans of an OTLP/JSON request.
pub fn decode_json(b: &[u8]) -> Option<Vec<Decoded>> {
    let v: Value = serde_json::from_slice(b).ok()?;
    let unhex = |s: &str| -> Option<Vec<u8>> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
            .collect()
    };
    let mut out = Vec::new();
    for rs in v["resourceSpans"].as_array()? {
        for ss in rs["scopeSpans"].as_array()? {
            for sp in ss["spans"].as_array()? {
                let t = unhex(sp["traceId"].as_str()?)?.try_into().ok()?;
                let s = unhex(sp["spanId"].as_str()?)?.try_into().ok()?;
                let p = match sp["parentSpanId"].as_str() {
                    Some(p) if !p.is_empty() => Some(unhex(p)?.try_into().ok()?),
                    _ => None,
                };
                out.push((t, s, p, sp["name"].as_str()?.to_owned()));
            }
        }
    }
    Some(out)
}
