//! HTML by hand: escaping, the frame every page shares, a few formats and
//! the SVG charts. No template engine: the pages are small and the output
//! is what the tests read.

use std::fmt::Write as _;

use crate::state::State;

pub const CSS: &str = include_str!("../assets/app.css");
pub const JS: &str = include_str!("../assets/app.js");
pub const ICON: &str = include_str!("../assets/icon.svg");

/// Text for an element or an attribute value.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const NAV: [(&str, &str); 5] = [
    ("runs", "Runs"),
    ("sessions", "Sessions"),
    ("cost", "Cost & usage"),
    ("knowledge", "Knowledge"),
    ("alerts", "Alerts"),
];

/// A whole page: `section` names the tab that is lit; `main` is the
/// content; `seq`, for a live page, the journal position it shows (the
/// script refreshes it when the journal moves past).
pub fn page(state: &State, title: &str, section: &str, seq: Option<i64>, main: &str) -> String {
    let mut nav = String::new();
    for (href, label) in NAV {
        let _ = write!(
            nav,
            "<a href=\"/{href}\"{}>{label}</a>",
            if href == section {
                " class=\"on\" aria-current=\"page\""
            } else {
                ""
            }
        );
    }
    let repo = state
        .project
        .layout
        .work_tree
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"csrf\" content=\"{csrf}\">\
<title>{title} · agentops</title>\
<link rel=\"icon\" href=\"/assets/icon.svg\">\
<link rel=\"stylesheet\" href=\"/assets/app.css\">\
<script src=\"/assets/app.js\" defer></script></head>\
<body><header><a class=\"brand\" href=\"/runs\">agentops</a><span class=\"repo\">{repo}</span><nav>{nav}</nav>\
<span class=\"live\" id=\"live\" title=\"updates as the journal grows\"></span></header>\
<main id=\"main\"{live}>{main}</main></body></html>\n",
        live = seq
            .map(|q| format!(" data-seq=\"{q}\""))
            .unwrap_or_default(),
        csrf = esc(&state.csrf),
        title = esc(title),
        repo = esc(&repo),
    )
}

/// A POST button: a form with the CSRF token.
pub fn action(state: &State, to: &str, label: &str, class: &str, extra: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}\" class=\"act\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">{extra}<button type=\"submit\" class=\"{class}\" data-action=\"{}\">{}</button></form>",
        esc(to),
        esc(&state.csrf),
        esc(label.to_ascii_lowercase().split(' ').next().unwrap_or("")),
        esc(label)
    )
}

pub fn usd(c: f64) -> String {
    if c == 0.0 {
        "$0".into()
    } else if c < 0.01 {
        format!("${c:.4}")
    } else {
        format!("${c:.2}")
    }
}

pub fn tokens(n: i64) -> String {
    agentops_telemetry::view::thousands(n)
}

pub fn duration_us(us: i64) -> String {
    agentops_telemetry::view::duration(us.max(0))
}

/// `2026-12-02 13:04:05` (UTC).
pub fn when(us: i64) -> String {
    let t = agentops_core::time::rfc3339(us);
    t.get(..19).unwrap_or(&t).replace('T', " ")
}

/// A status word as a badge.
pub fn badge(status: &str) -> String {
    format!(
        "<span class=\"badge s-{}\">{}</span>",
        esc(&status.to_ascii_lowercase().replace(' ', "-")),
        esc(status)
    )
}

/// A day number (since the epoch) as `2026-12-02`.
pub fn day(d: i64) -> String {
    let t = agentops_core::time::rfc3339(d * 86_400_000_000);
    t.get(..10).unwrap_or(&t).to_owned()
}

/// One bar series of a chart.
pub struct Series<'a> {
    pub name: &'a str,
    pub class: &'a str,
    pub values: Vec<f64>,
}

/// A bar chart: one group of bars (stacked when `stacked`) per label.
/// `fmt` formats a value for the axis and the tooltips.
pub fn bars(
    id: &str,
    labels: &[String],
    series: &[Series<'_>],
    stacked: bool,
    fmt: &dyn Fn(f64) -> String,
) -> String {
    let (w, h, left, bottom) = (720.0_f64, 180.0_f64, 64.0_f64, 22.0_f64);
    let n = labels.len().max(1) as f64;
    let max = (0..labels.len())
        .map(|i| {
            let vals = series
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0.0));
            if stacked {
                vals.sum::<f64>()
            } else {
                vals.fold(0.0, f64::max)
            }
        })
        .fold(0.0, f64::max);
    let max = if max > 0.0 { max } else { 1.0 };
    let plot_w = w - left - 8.0;
    let plot_h = h - bottom - 8.0;
    let slot = plot_w / n;
    let mut s = format!(
        "<figure class=\"chart\" id=\"{}\"><svg viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\">",
        esc(id),
        esc(id)
    );
    for k in 0..=2 {
        let v = max * f64::from(k) / 2.0;
        let y = 8.0 + plot_h - plot_h * f64::from(k) / 2.0;
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text class=\"axis\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            w - 8.0,
            left - 6.0,
            y + 4.0,
            esc(&fmt(v))
        );
    }
    let per = if stacked {
        1.0
    } else {
        series.len().max(1) as f64
    };
    let bar_w = (slot * 0.8 / per).max(1.0);
    for (i, label) in labels.iter().enumerate() {
        let x0 = left + slot * i as f64 + slot * 0.1;
        let mut base = 0.0;
        for (k, se) in series.iter().enumerate() {
            let v = se.values.get(i).copied().unwrap_or(0.0);
            let bh = plot_h * v / max;
            let (x, y) = if stacked {
                (x0, 8.0 + plot_h - plot_h * base / max - bh)
            } else {
                (x0 + bar_w * k as f64, 8.0 + plot_h - bh)
            };
            base += v;
            let _ = write!(
                s,
                "<rect class=\"{}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar_w:.1}\" height=\"{bh:.1}\" data-value=\"{v}\"><title>{} · {}: {}</title></rect>",
                esc(se.class),
                esc(label),
                esc(se.name),
                esc(&fmt(v))
            );
        }
        // Every label when few; else every few.
        let every = (labels.len() / 10).max(1);
        if i % every == 0 {
            let _ = write!(
                s,
                "<text class=\"axis\" x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                x0 + slot * 0.4,
                h - 6.0,
                esc(label.get(5..).unwrap_or(label))
            );
        }
    }
    s.push_str("</svg><figcaption>");
    for se in series {
        let _ = write!(
            s,
            "<span class=\"key {}\"></span>{} ",
            esc(se.class),
            esc(se.name)
        );
    }
    s.push_str("</figcaption></figure>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_html_reads() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn a_chart_has_one_bar_per_value() {
        let svg = bars(
            "c",
            &["2026-12-01".into(), "2026-12-02".into()],
            &[
                Series {
                    name: "a",
                    class: "s1",
                    values: vec![1.0, 2.0],
                },
                Series {
                    name: "b",
                    class: "s2",
                    values: vec![0.0, 3.0],
                },
            ],
            true,
            &|v| format!("{v}"),
        );
        assert_eq!(svg.matches("<rect").count(), 4);
        assert!(svg.contains("data-value=\"3\""));
    }
}
