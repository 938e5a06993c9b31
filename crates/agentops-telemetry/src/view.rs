//! Terminal views: the trace tree with duration bars, the stats table and
//! the status alerts. Every renderer takes the terminal width and fits it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use agentops_store::{RollupRow, Sums};

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::span::{AttrValue, Span, SpanEvent, SpanKind, hex};

/// `n` with thousands separators.
pub fn thousands(n: i64) -> String {
    let mut out = String::new();
    write_thousands(&mut out, n);
    out
}

/// Appends `n` with thousands separators.
fn write_thousands(out: &mut String, n: i64) {
    let mut digits = [0u8; 20];
    let mut v = n.unsigned_abs();
    let mut len = 0;
    loop {
        digits[len] = b'0' + (v % 10) as u8;
        len += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        out.push('-');
    }
    for i in (0..len).rev() {
        out.push(char::from(digits[i]));
        if i > 0 && i % 3 == 0 {
            out.push(',');
        }
    }
}

/// A duration in a short human form: 850ms, 12.3s, 4m05s, 2h10m.
pub fn duration(us: i64) -> String {
    let ms = us as f64 / 1000.0;
    if ms < 1.0 && us > 0 {
        format!("{us}µs")
    } else if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else if ms < 60_000.0 {
        format!("{:.1}s", ms / 1000.0)
    } else if ms < 3_600_000.0 {
        let s = (ms / 1000.0) as i64;
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        let m = (ms / 60_000.0) as i64;
        format!("{}h{:02}m", m / 60, m % 60)
    }
}

/// A cost in dollars with enough digits to be useful.
pub fn usd(c: f64) -> String {
    if c == 0.0 {
        "$0".into()
    } else if c < 0.01 {
        format!("${c:.4}")
    } else if c < 100.0 {
        format!("${c:.2}")
    } else {
        format!("${c:.0}")
    }
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
    t.push('…');
    t
}

fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n >= width {
        truncate(s, width)
    } else {
        format!("{s}{}", " ".repeat(width - n))
    }
}

fn rpad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n >= width {
        truncate(s, width)
    } else {
        format!("{}{s}", " ".repeat(width - n))
    }
}

/// Children of each span (by index), in start order; the roots first. A
/// span whose parent is not in `spans` is a root.
fn tree(spans: &[Span]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut at: HashMap<[u8; 8], usize> = HashMap::with_capacity(spans.len());
    at.extend(spans.iter().enumerate().map(|(i, s)| (s.span_id, i)));
    let mut roots = Vec::new();
    let mut kids: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
    for (i, s) in spans.iter().enumerate() {
        match s.parent_span_id.and_then(|p| at.get(&p)) {
            Some(&p) => kids[p].push(i),
            None => roots.push(i),
        }
    }
    for v in &mut kids {
        v.sort_by_key(|&i| (spans[i].start_us, i));
    }
    (roots, kids)
}

/// Appends `s` to `out` in exactly `width` columns: padded with spaces on
/// the right (`right` false) or the left, or cut with `…`.
fn put(out: &mut String, s: &str, width: usize, right: bool) {
    let n = s.chars().count();
    if n > width {
        if width > 0 {
            out.extend(s.chars().take(width - 1));
            out.push('…');
        }
        return;
    }
    if right {
        out.extend(std::iter::repeat_n(' ', width - n));
    }
    out.push_str(s);
    if !right {
        out.extend(std::iter::repeat_n(' ', width - n));
    }
}

/// The trace as a tree: name, status, a bar placing the span in the run's
/// time, duration, tokens and cost; `width` columns at most.
pub fn render_trace(spans: &[Span], width: usize) -> String {
    if spans.is_empty() {
        return String::new();
    }
    let (roots, kids) = tree(spans);
    let t0 = spans.iter().map(|s| s.start_us).min().unwrap_or(0);
    let t1 = spans
        .iter()
        .map(|s| s.end_us)
        .max()
        .unwrap_or(t0)
        .max(t0 + 1);
    let width = width.max(60);
    // Fixed columns: status 8, duration 8, tokens 17, cost 9, spaces.
    let bar_w = (width / 5).clamp(10, 40);
    let name_w = width.saturating_sub(bar_w + 8 + 8 + 17 + 9 + 5).max(16);
    let mut out = String::with_capacity(spans.len() * (width + 40));
    // Depth-first with one prefix buffer: each entry remembers how long its
    // parent's child prefix was, so siblings cut the buffer back to it.
    let mut prefix = String::new();
    let mut tmp = String::new();
    let mut stack: Vec<(usize, usize, bool, bool)> = roots
        .iter()
        .rev()
        .enumerate()
        .map(|(n, &i)| (i, 0, n == 0, true))
        .collect();
    while let Some((i, plen, last, is_root)) = stack.pop() {
        let s = &spans[i];
        prefix.truncate(plen);
        tmp.clear();
        if !is_root {
            tmp.push_str(&prefix);
            tmp.push_str(if last { "└─ " } else { "├─ " });
        }
        tmp.push_str(&s.name);
        put(&mut out, &tmp, name_w, false);
        out.push(' ');
        put(&mut out, &s.status, 8, false);
        out.push(' ');
        let span_len = (t1 - t0) as f64;
        let a = (((s.start_us - t0) as f64 / span_len) * bar_w as f64).floor() as usize;
        let b = (((s.end_us - t0) as f64 / span_len) * bar_w as f64).ceil() as usize;
        let a = a.min(bar_w.saturating_sub(1));
        let b = b.clamp(a + 1, bar_w);
        let fill = if s.error.is_some() { '▒' } else { '█' };
        out.extend(std::iter::repeat_n('·', a));
        out.extend(std::iter::repeat_n(fill, b - a));
        out.extend(std::iter::repeat_n('·', bar_w - b));
        out.push(' ');
        put(&mut out, &duration(s.end_us - s.start_us), 8, true);
        out.push(' ');
        tmp.clear();
        if s.input_tokens + s.output_tokens > 0 {
            write_thousands(&mut tmp, s.input_tokens);
            tmp.push('→');
            write_thousands(&mut tmp, s.output_tokens);
        }
        put(&mut out, &tmp, 17, true);
        out.push(' ');
        put(&mut out, &s.cost_usd.map(usd).unwrap_or_default(), 9, true);
        out.push('\n');
        if !is_root {
            prefix.push_str(if last { "   " } else { "│  " });
        }
        if let Some(e) = &s.error
            && s.kind != SpanKind::Workflow
        {
            tmp.clear();
            tmp.push_str(&prefix);
            tmp.push_str("   ! ");
            tmp.push_str(&e.replace('\n', " "));
            out.push_str(&truncate(&tmp, width));
            out.push('\n');
        }
        let k = &kids[i];
        for (n, &c) in k.iter().enumerate().rev() {
            stack.push((c, prefix.len(), n == k.len() - 1, false));
        }
    }
    out
}

/// The trace as JSON (serialized straight from the spans: keys sorted, as
/// a `serde_json` object would print them).
pub fn trace_json<'a>(run: &'a str, spans: &'a [Span]) -> TraceJson<'a> {
    TraceJson { run, spans }
}

/// See [`trace_json`].
pub struct TraceJson<'a> {
    run: &'a str,
    spans: &'a [Span],
}

impl Serialize for TraceJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Spans<'a>(&'a [Span]);
        impl Serialize for Spans<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().map(SpanJson))
            }
        }
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("run", self.run)?;
        m.serialize_entry("spans", &Spans(self.spans))?;
        m.serialize_entry("trace_id", &self.spans.first().map(|s| hex(&s.trace_id)))?;
        m.end()
    }
}

struct SpanJson<'a>(&'a Span);

impl Serialize for SpanJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let sp = self.0;
        let mut m = s.serialize_map(Some(14))?;
        m.serialize_entry("attributes", &Attrs(&sp.attrs))?;
        m.serialize_entry("cost_usd", &sp.cost_usd)?;
        m.serialize_entry("duration_ms", &((sp.end_us - sp.start_us) as f64 / 1000.0))?;
        m.serialize_entry("end_us", &sp.end_us)?;
        m.serialize_entry("error", &sp.error)?;
        m.serialize_entry("events", &Events(&sp.events))?;
        m.serialize_entry("input_tokens", &sp.input_tokens)?;
        m.serialize_entry("kind", &sp.kind)?;
        m.serialize_entry("name", &sp.name)?;
        m.serialize_entry("output_tokens", &sp.output_tokens)?;
        m.serialize_entry("parent_span_id", &sp.parent_span_id.map(|p| hex(&p)))?;
        m.serialize_entry("span_id", &hex(&sp.span_id))?;
        m.serialize_entry("start_us", &sp.start_us)?;
        m.serialize_entry("status", &sp.status)?;
        m.end()
    }
}

struct Events<'a>(&'a [SpanEvent]);

impl Serialize for Events<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct One<'a>(&'a SpanEvent);
        impl Serialize for One<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("attributes", &Attrs(&self.0.attrs))?;
                m.serialize_entry("name", &self.0.name)?;
                m.serialize_entry("ts_us", &self.0.ts_us)?;
                m.end()
            }
        }
        s.collect_seq(self.0.iter().map(One))
    }
}

/// Attributes as an object, keys sorted.
struct Attrs<'a>(&'a [(&'static str, AttrValue)]);

impl Serialize for Attrs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut sorted: Vec<&(&'static str, AttrValue)> = self.0.iter().collect();
        sorted.sort_by_key(|(k, _)| *k);
        s.collect_map(sorted.into_iter().map(|(k, v)| (*k, v)))
    }
}

/// What `stats` groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Agent,
    Model,
    Workflow,
    Day,
    Session,
}

impl By {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "agent" => By::Agent,
            "model" => By::Model,
            "workflow" => By::Workflow,
            "day" => By::Day,
            "session" | "run" => By::Session,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            By::Agent => "agent",
            By::Model => "model",
            By::Workflow => "workflow",
            By::Day => "day",
            By::Session => "session",
        }
    }

    /// The group a rollup row falls in.
    pub fn key(self, r: &RollupRow) -> String {
        let or = |s: &str, d: &str| {
            if s.is_empty() {
                d.to_owned()
            } else {
                s.to_owned()
            }
        };
        match self {
            By::Agent => or(&r.agent, "(none)"),
            By::Model => or(&r.model, "(no model)"),
            By::Workflow => match (&r.workflow, &r.harness) {
                (Some(w), _) => w.clone(),
                (None, Some(h)) => format!("({h} sessions)"),
                (None, None) => "(other)".into(),
            },
            By::Day => {
                let c =
                    agentops_core::time::civil_from_micros(r.day * agentops_store::rollup::DAY_US);
                format!("{:04}-{:02}-{:02}", c.year, c.month, c.day)
            }
            By::Session => r.run_id.clone(),
        }
    }
}

/// One group of `stats`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Group {
    pub key: String,
    /// Distinct runs and sessions.
    pub runs: usize,
    #[serde(flatten)]
    pub sums: Sums,
    pub error_rate: Option<f64>,
    pub gate_pass_rate: Option<f64>,
    pub mean_llm_ms: Option<f64>,
}

/// Groups rollup rows.
pub fn group(rows: &[RollupRow], by: By) -> Vec<Group> {
    let mut m: BTreeMap<String, (HashSet<&str>, Sums)> = BTreeMap::new();
    for r in rows {
        let g = m.entry(by.key(r)).or_default();
        g.0.insert(&r.run_id);
        g.1.add(&r.sums);
    }
    let mut out: Vec<Group> = m
        .into_iter()
        .map(|(key, (runs, sums))| Group {
            key,
            runs: runs.len(),
            error_rate: sums.error_rate(),
            gate_pass_rate: (sums.gates > 0).then(|| sums.gates_passed as f64 / sums.gates as f64),
            mean_llm_ms: (sums.llm_calls > 0).then(|| sums.llm_ms / sums.llm_calls as f64),
            sums,
        })
        .collect();
    if by != By::Day {
        out.sort_by(|a, b| {
            b.sums
                .cost_usd
                .total_cmp(&a.sums.cost_usd)
                .then(a.key.cmp(&b.key))
        });
    }
    out
}

fn pct(x: Option<f64>) -> String {
    x.map(|v| format!("{:.1}%", v * 100.0))
        .unwrap_or_else(|| "–".into())
}

/// The stats table, dropping the least important columns to fit `width`.
pub fn render_stats(groups: &[Group], by: By, width: usize) -> String {
    type Col = (&'static str, usize, fn(&Group) -> String);
    // (header, priority: lower is kept longer, cell)
    let cols: Vec<Col> = vec![
        ("runs", 3, |g| thousands(g.runs as i64)),
        ("calls", 1, |g| thousands(g.sums.llm_calls)),
        ("input", 1, |g| thousands(g.sums.input_tokens)),
        ("cached", 2, |g| thousands(g.sums.cache_read_tokens)),
        ("output", 1, |g| thousands(g.sums.output_tokens)),
        ("cost", 0, |g| usd(g.sums.cost_usd)),
        ("avg ms", 3, |g| {
            g.mean_llm_ms
                .map(|m| format!("{m:.0}"))
                .unwrap_or_else(|| "–".into())
        }),
        ("errors", 0, |g| pct(g.error_rate)),
        ("tools", 2, |g| thousands(g.sums.tool_calls)),
        ("gates ok", 2, |g| pct(g.gate_pass_rate)),
        ("retries", 3, |g| thousands(g.sums.retries)),
    ];
    let cells: Vec<Vec<String>> = groups
        .iter()
        .map(|g| cols.iter().map(|c| (c.2)(g)).collect())
        .collect();
    let widths: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
                .max(c.0.len())
        })
        .collect();
    let key_w = groups
        .iter()
        .map(|g| g.key.chars().count())
        .max()
        .unwrap_or(0)
        .max(by.as_str().len())
        .min(40);
    // Drop columns by priority until the row fits (the key keeps ≥ 12).
    let mut keep: Vec<bool> = vec![true; cols.len()];
    let total = |keep: &[bool], key: usize| -> usize {
        key + widths
            .iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(w, _)| w + 2)
            .sum::<usize>()
    };
    let mut key_w = key_w;
    for prio in (1..=3).rev() {
        if total(&keep, key_w) <= width {
            break;
        }
        for (i, c) in cols.iter().enumerate() {
            if c.1 == prio && total(&keep, key_w) > width {
                keep[i] = false;
            }
        }
    }
    if total(&keep, key_w) > width {
        key_w = width.saturating_sub(total(&keep, 0)).max(12);
    }
    let mut out = String::new();
    let mut line = pad(by.as_str(), key_w);
    for (i, c) in cols.iter().enumerate().filter(|(i, _)| keep[*i]) {
        line.push_str("  ");
        line.push_str(&rpad(c.0, widths[i]));
    }
    let _ = writeln!(out, "{}", line.trim_end());
    for (g, row) in groups.iter().zip(&cells) {
        let mut line = pad(&g.key, key_w);
        for (i, _) in cols.iter().enumerate().filter(|(i, _)| keep[*i]) {
            line.push_str("  ");
            line.push_str(&rpad(&row[i], widths[i]));
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(12), "12");
        assert_eq!(duration(1_500), "2ms");
        assert_eq!(duration(12_300_000), "12.3s");
        assert_eq!(duration(245_000_000), "4m05s");
        assert_eq!(usd(0.00123), "$0.0012");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }

    #[test]
    fn stats_fit_the_width() {
        let row = |agent: &str, cost: f64| RollupRow {
            day: 20_000,
            run_id: "r".into(),
            agent: agent.into(),
            model: "m".into(),
            workflow: None,
            harness: None,
            sums: Sums {
                llm_calls: 1_000_000,
                input_tokens: 123_456_789,
                output_tokens: 1_234_567,
                cost_usd: cost,
                ..Sums::default()
            },
        };
        let groups = group(
            &[
                row("planner", 1.0),
                row("a-very-long-agent-name-indeed", 2.0),
            ],
            By::Agent,
        );
        assert_eq!(groups[0].key, "a-very-long-agent-name-indeed");
        for w in [40, 60, 80, 120, 200] {
            let t = render_stats(&groups, By::Agent, w);
            for l in t.lines() {
                assert!(l.chars().count() <= w.max(40), "{w}: {l:?}");
            }
            assert!(t.contains("cost"), "{t}");
        }
    }
}
