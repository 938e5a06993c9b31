//! The context guard: how full a harness session's context window is, read
//! from the tail of its transcript, as a band.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use agentops_core::config::ContextConfig;
use serde::Serialize;

/// At most this much of a transcript's end is read.
pub const TAIL_BYTES: u64 = 512 * 1024;

/// How full the window is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Band {
    /// ≤ 20%.
    Green,
    /// ≤ 40%: the 40% rule's limit.
    Amber,
    /// ≤ 60%: wrap up and hand off.
    Red,
    /// Above 60%.
    Critical,
}

impl Band {
    /// The band of a fill ratio (0.0–1.0+).
    pub fn of(ratio: f64) -> Self {
        if ratio <= 0.20 {
            Band::Green
        } else if ratio <= 0.40 {
            Band::Amber
        } else if ratio <= 0.60 {
            Band::Red
        } else {
            Band::Critical
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Band::Green => "green",
            Band::Amber => "amber",
            Band::Red => "red",
            Band::Critical => "critical",
        }
    }
}

/// What the guard found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuardReport {
    /// Tokens in the window: input + cache creation + cache read of the latest
    /// assistant turn.
    pub used: u64,
    pub window: u64,
    pub percent: f64,
    pub band: Band,
    pub model: Option<String>,
    /// Where the window size came from: `flag`, `config`, `model table`, `default`.
    pub window_source: String,
}

/// Why the transcript could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("{path}: cannot read the transcript: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("{path}: no assistant turn with token usage in the last {TAIL_BYTES} bytes")]
    NoUsage { path: PathBuf },
}

/// Built-in context windows by model-name prefix (longest prefix wins).
const WINDOWS: &[(&str, u64)] = &[
    ("claude-", 200_000),
    ("gpt-4.1", 1_047_576),
    ("gpt-4o", 128_000),
    ("gpt-5", 400_000),
    ("o3", 200_000),
    ("o4", 200_000),
    ("gemini-", 1_048_576),
];

/// The window for `model` (config table, then built-in table, then
/// `context.window`), and where it came from.
pub fn window_for(model: Option<&str>, cfg: &ContextConfig) -> (u64, &'static str) {
    if let Some(m) = model {
        if let Some((_, w)) = cfg
            .windows
            .iter()
            .filter(|(p, _)| m.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len())
        {
            return (*w, "config");
        }
        // Claude Code marks the 1M-token variants with `[1m]`.
        if m.ends_with("[1m]") {
            return (1_000_000, "model table");
        }
        if let Some((_, w)) = WINDOWS
            .iter()
            .filter(|(p, _)| m.starts_with(p))
            .max_by_key(|(p, _)| p.len())
        {
            return (*w, "model table");
        }
    }
    (cfg.window, "default")
}

/// The latest usage in a Claude Code transcript: (tokens in the window, model).
/// Reads at most the last [`TAIL_BYTES`]; lines it cannot parse are skipped
/// (the format is internal to Claude Code and changes).
pub fn latest_usage(path: &Path) -> Result<(u64, Option<String>), GuardError> {
    let ioe = |e: std::io::Error| GuardError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut f = std::fs::File::open(path).map_err(ioe)?;
    let len = f.metadata().map_err(ioe)?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    f.seek(SeekFrom::Start(start)).map_err(ioe)?;
    let mut buf = Vec::with_capacity(usize::try_from(len - start).unwrap_or(0));
    f.read_to_end(&mut buf).map_err(ioe)?;
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    if start > 0 {
        // The first line was cut by the seek.
        text = text
            .split_once('\n')
            .map(|(_, rest)| rest.to_owned())
            .unwrap_or_default();
    }
    for line in text.lines().rev() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v.get("type").and_then(|t| t.as_str()) != Some("assistant") {
            continue;
        }
        let Some(msg) = v.get("message") else {
            continue;
        };
        let Some(u) = msg.get("usage") else { continue };
        let n = |k: &str| u.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
        let used =
            n("input_tokens") + n("cache_creation_input_tokens") + n("cache_read_input_tokens");
        let model = msg.get("model").and_then(|m| m.as_str()).map(str::to_owned);
        return Ok((used, model));
    }
    Err(GuardError::NoUsage {
        path: path.to_path_buf(),
    })
}

/// Reads the transcript and reports the band. `window` overrides the lookup.
pub fn guard(
    path: &Path,
    window: Option<u64>,
    cfg: &ContextConfig,
) -> Result<GuardReport, GuardError> {
    let (used, model) = latest_usage(path)?;
    let (window, source) = match window {
        Some(w) => (w, "flag"),
        None => window_for(model.as_deref(), cfg),
    };
    let ratio = if window == 0 {
        f64::INFINITY
    } else {
        used as f64 / window as f64
    };
    Ok(GuardReport {
        used,
        window,
        percent: (ratio * 1000.0).round() / 10.0,
        band: Band::of(ratio),
        model,
        window_source: source.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn bands() {
        assert_eq!(Band::of(0.0), Band::Green);
        assert_eq!(Band::of(0.20), Band::Green);
        assert_eq!(Band::of(0.2001), Band::Amber);
        assert_eq!(Band::of(0.40), Band::Amber);
        assert_eq!(Band::of(0.60), Band::Red);
        assert_eq!(Band::of(0.61), Band::Critical);
    }

    #[test]
    fn windows() {
        let mut cfg = agentops_core::config::Config::default().context;
        assert_eq!(
            window_for(Some("claude-sonnet-4-5"), &cfg),
            (200_000, "model table")
        );
        assert_eq!(
            window_for(Some("claude-sonnet-4-5[1m]"), &cfg),
            (1_000_000, "model table")
        );
        assert_eq!(window_for(Some("mystery"), &cfg), (200_000, "default"));
        cfg.windows.insert("claude-sonnet".into(), 500_000);
        assert_eq!(
            window_for(Some("claude-sonnet-4-5"), &cfg),
            (500_000, "config")
        );
    }

    #[test]
    fn reads_the_fixture_transcript() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testkit/fixtures/claude-code/transcript-sample.jsonl");
        let cfg = agentops_core::config::Config::default().context;
        let r = guard(&p, None, &cfg).unwrap();
        assert_eq!(r.used, 118 + 402 + 12044);
        assert_eq!(r.model.as_deref(), Some("claude-sonnet-4-5"));
        assert_eq!(r.band, Band::Green);
    }

    #[test]
    fn only_the_tail_is_read_and_a_cut_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.jsonl");
        let early =
            r#"{"type":"assistant","message":{"model":"claude-x","usage":{"input_tokens":1}}}"#;
        let late = r#"{"type":"assistant","message":{"model":"claude-x","usage":{"input_tokens":90000,"cache_read_input_tokens":10000}}}"#;
        let filler = format!(
            "{{\"type\":\"user\",\"message\":{{\"content\":\"{}\"}}}}\n",
            "x".repeat(1000)
        );
        let mut text = format!("{early}\n");
        for _ in 0..700 {
            text.push_str(&filler);
        }
        text.push_str(late);
        text.push_str("\n{\"type\":\"assistant\",\"truncated\n");
        std::fs::write(&p, text).unwrap();
        let cfg = agentops_core::config::Config::default().context;
        let r = guard(&p, None, &cfg).unwrap();
        assert_eq!(r.used, 100_000);
        assert_eq!(r.band, Band::Red);
        assert_eq!(r.percent, 50.0);
        let r = guard(&p, Some(1_000_000), &cfg).unwrap();
        assert_eq!((r.band, r.window_source.as_str()), (Band::Green, "flag"));
        // Usage only before the tail: not found.
        let mut text = format!("{early}\n");
        for _ in 0..700 {
            text.push_str(&filler);
        }
        std::fs::write(&p, text).unwrap();
        assert!(matches!(
            guard(&p, None, &cfg),
            Err(GuardError::NoUsage { .. })
        ));
    }
}
