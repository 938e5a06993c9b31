//! Context packets: the best entries for a task within a token budget, in
//! tiers (full text, one-line summary, id and title), with an explanation for
//! every candidate.

use serde::Serialize;

use crate::index::Hit;
use crate::{rank, render};

/// What to assemble.
#[derive(Debug, Clone)]
pub struct PacketRequest {
    /// Token budget for the whole packet.
    pub budget: u32,
    /// At most this many entries in full.
    pub full_entries: usize,
}

/// What happened to a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Full,
    Summary,
    Title,
    Dropped,
}

/// One candidate's fate and why.
#[derive(Debug, Clone, Serialize)]
pub struct Explained {
    pub rank: usize,
    pub id: String,
    pub title: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub score: rank::ScoreParts,
    pub decision: Decision,
    /// Tokens this entry takes in the packet (0 when dropped).
    pub tokens: u32,
    pub reason: String,
}

/// An assembled packet.
#[derive(Debug, Clone, Serialize)]
pub struct Packet {
    pub budget: u32,
    /// Tokens used, from the counts taken at indexing (plus a margin of one
    /// token per block for joins).
    pub tokens: u32,
    /// Ids in the packet, in packet order.
    pub cited: Vec<String>,
    pub explain: Vec<Explained>,
    /// The packet as Markdown.
    pub text: String,
}

/// The budget that keeps the window under 40%:
/// `min(packet_max, 0.40 × window − used)`, never negative.
pub fn default_budget(packet_max: u64, window: u64, used: u64) -> u32 {
    let forty = (window as f64 * 0.40).floor() as u64;
    let b = packet_max.min(forty.saturating_sub(used));
    u32::try_from(b).unwrap_or(u32::MAX)
}

/// Assembles a packet from ranked hits (best first). `fixed` holds the token
/// counts of [`render::FIXED`].
pub fn assemble(hits: &[Hit], fixed: &[u32], req: &PacketRequest) -> Packet {
    let fixed_of = |i: usize| fixed.get(i).copied().unwrap_or(64);
    let (header, warn_h, know_h, sum_h, more_h) = (
        fixed_of(0),
        fixed_of(1),
        fixed_of(2),
        fixed_of(3),
        fixed_of(4),
    );
    let mut explain = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    let mut used: u32 = 0;
    let mut warnings: Vec<String> = Vec::new();
    let mut fulls: Vec<String> = Vec::new();
    let mut sums: Vec<String> = Vec::new();
    let mut titles: Vec<String> = Vec::new();
    let mut full_count = 0usize;
    let header_fits = req.budget >= header;
    if header_fits {
        used = header;
    }
    for (i, h) in hits.iter().enumerate() {
        let e = &h.entry;
        let mut ex = Explained {
            rank: i + 1,
            id: e.id.to_string(),
            title: e.title.clone(),
            kind: e.kind.to_string(),
            score: h.score,
            decision: Decision::Dropped,
            tokens: 0,
            reason: String::new(),
        };
        if seen.contains(&e.id.as_str()) {
            ex.reason = "duplicate id: a better-ranked file has the same id".into();
            explain.push(ex);
            continue;
        }
        seen.push(e.id.as_str());
        if !header_fits {
            ex.reason = format!(
                "the budget ({}) is smaller than the packet header ({header})",
                req.budget
            );
            explain.push(ex);
            continue;
        }
        let warning = rank::is_warning(e.kind);
        let left = req.budget - used;
        // Cost of a tier: its block, a one-token join margin, and the section
        // heading when this is the section's first block.
        let cost = |block: u32, section_empty: bool, heading: u32| {
            block + 1 + if section_empty { heading } else { 0 }
        };
        let full_cost = if warning {
            cost(h.tokens_full, warnings.is_empty(), warn_h)
        } else {
            cost(h.tokens_full, fulls.is_empty(), know_h)
        };
        let sum_cost = if warning {
            cost(h.tokens_summary, warnings.is_empty(), warn_h)
        } else {
            cost(h.tokens_summary, sums.is_empty(), sum_h)
        };
        let title_cost = if warning {
            cost(h.tokens_title, warnings.is_empty(), warn_h)
        } else {
            cost(h.tokens_title, titles.is_empty(), more_h)
        };
        let full_allowed = full_count < req.full_entries;
        if full_allowed && full_cost <= left {
            ex.decision = Decision::Full;
            ex.tokens = full_cost;
            ex.reason = format!(
                "rank {}: full text fits ({full_cost} of {left} tokens left)",
                i + 1
            );
            full_count += 1;
            let block = render::full(e);
            if warning {
                warnings.push(block)
            } else {
                fulls.push(block)
            }
        } else if sum_cost <= left {
            ex.decision = Decision::Summary;
            ex.tokens = sum_cost;
            ex.reason = if full_allowed {
                format!(
                    "full text needs {full_cost} tokens, {left} left; the summary fits ({sum_cost})"
                )
            } else {
                format!(
                    "already {} entries in full (context.full_entries); the summary fits ({sum_cost})",
                    req.full_entries
                )
            };
            let block = render::summary_line(e);
            if warning {
                warnings.push(block)
            } else {
                sums.push(block)
            }
        } else if title_cost <= left {
            ex.decision = Decision::Title;
            ex.tokens = title_cost;
            ex.reason = format!(
                "summary needs {sum_cost} tokens, {left} left; id and title fit ({title_cost})"
            );
            let block = render::title_line(e);
            if warning {
                warnings.push(block)
            } else {
                titles.push(block)
            }
        } else {
            ex.reason =
                format!("out of budget: even the title needs {title_cost} tokens, {left} left");
            explain.push(ex);
            continue;
        }
        used += ex.tokens;
        explain.push(ex);
    }
    let mut text = String::new();
    if header_fits {
        text.push_str(render::HEADER);
        for (heading, blocks) in [
            (render::WARNINGS, &warnings),
            (render::KNOWLEDGE, &fulls),
            (render::SUMMARIES, &sums),
            (render::MORE, &titles),
        ] {
            if !blocks.is_empty() {
                text.push_str(heading);
                for b in blocks.iter() {
                    text.push_str(b);
                }
            }
        }
    }
    // Cited in packet order: warnings, full, summaries, titles.
    let order = |d: Decision, warning: bool| -> u8 {
        match (warning, d) {
            (true, _) => 0,
            (false, Decision::Full) => 1,
            (false, Decision::Summary) => 2,
            (false, Decision::Title) => 3,
            (false, Decision::Dropped) => 4,
        }
    };
    let mut ordered: Vec<(u8, usize, String)> = explain
        .iter()
        .filter(|x| x.decision != Decision::Dropped)
        .map(|x| {
            (
                order(x.decision, x.kind == "anti-pattern"),
                x.rank,
                x.id.clone(),
            )
        })
        .collect();
    ordered.sort();
    let cited_ordered: Vec<String> = ordered.into_iter().map(|(_, _, id)| id).collect();
    Packet {
        budget: req.budget,
        tokens: used,
        cited: cited_ordered,
        explain,
        text,
    }
}
