//! Retrieval evaluation: labelled queries with the entries that should come
//! back, scored as hit rate at 5, precision at 5, recall at 10 and mean
//! reciprocal rank, overall and per subset (`lexical`: the query shares the
//! entry's words; `paraphrase`: it describes the symptom in its own words).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One labelled query (a line of the JSONL file).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Labelled {
    /// Which subset the query belongs to (default [`LEXICAL`]).
    #[serde(default = "lexical", skip_serializing_if = "is_lexical")]
    pub subset: String,
    pub query: String,
    /// Ids that are relevant, in no particular order.
    pub expected: Vec<String>,
}

/// The subset of a query that names none.
pub const LEXICAL: &str = "lexical";

fn lexical() -> String {
    LEXICAL.to_owned()
}

fn is_lexical(s: &String) -> bool {
    s == LEXICAL
}

/// Overall figures, the same per subset, and each query's.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub queries: usize,
    /// Share of queries with a relevant entry in the top 5.
    pub hit_at_5: f64,
    pub precision_at_5: f64,
    pub recall_at_10: f64,
    pub mrr: f64,
    /// By subset name, in the order first seen.
    pub subsets: Vec<SubsetReport>,
    pub per_query: Vec<QueryResult>,
}

/// The figures of one subset.
#[derive(Debug, Clone, Serialize)]
pub struct SubsetReport {
    pub subset: String,
    pub queries: usize,
    pub hit_at_5: f64,
    pub precision_at_5: f64,
    pub recall_at_10: f64,
    pub mrr: f64,
}

/// How one query did.
#[derive(Debug, Clone, Serialize)]
pub struct QueryResult {
    pub subset: String,
    pub query: String,
    pub hit_at_5: bool,
    pub precision_at_5: f64,
    pub recall_at_10: f64,
    pub reciprocal_rank: f64,
    /// The top 10 ids returned.
    pub got: Vec<String>,
}

/// Why a labelled set cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("{path}:{line}: {reason}")]
    Line {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// Reads a JSONL file of `{"query": …, "expected": [ids]}` lines (blank lines
/// and lines starting with `#` are skipped).
pub fn read_labelled(path: &Path) -> Result<Vec<Labelled>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let l: Labelled = serde_json::from_str(t).map_err(|e| EvalError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            reason: format!("{e}; expected {{\"query\": \"…\", \"expected\": [\"entry-id\", …]}}"),
        })?;
        if l.expected.is_empty() {
            return Err(EvalError::Line {
                path: path.to_path_buf(),
                line: i + 1,
                reason: "`expected` is empty: list at least one relevant entry id".into(),
            });
        }
        out.push(l);
    }
    Ok(out)
}

/// Scores `search` (query → ranked ids) over the labelled set.
pub fn evaluate(set: &[Labelled], search: &mut dyn FnMut(&str) -> Vec<String>) -> EvalReport {
    let mut per = Vec::with_capacity(set.len());
    for l in set {
        let got = search(&l.query);
        let rel = |id: &String| l.expected.contains(id);
        let p5 = got.iter().take(5).filter(|id| rel(id)).count() as f64 / 5.0;
        let r10 = got.iter().take(10).filter(|id| rel(id)).count() as f64 / l.expected.len() as f64;
        let rr = got
            .iter()
            .position(rel)
            .map_or(0.0, |p| 1.0 / (p as f64 + 1.0));
        per.push(QueryResult {
            subset: l.subset.clone(),
            query: l.query.clone(),
            hit_at_5: got.iter().take(5).any(rel),
            precision_at_5: p5,
            recall_at_10: r10,
            reciprocal_rank: rr,
            got: got.into_iter().take(10).collect(),
        });
    }
    let mut names: Vec<String> = Vec::new();
    for q in &per {
        if !names.contains(&q.subset) {
            names.push(q.subset.clone());
        }
    }
    let subsets = names
        .into_iter()
        .map(|name| {
            let of: Vec<&QueryResult> = per.iter().filter(|q| q.subset == name).collect();
            let all = figures(&of);
            SubsetReport {
                subset: name,
                queries: of.len(),
                hit_at_5: all.0,
                precision_at_5: all.1,
                recall_at_10: all.2,
                mrr: all.3,
            }
        })
        .collect();
    let all = figures(&per.iter().collect::<Vec<_>>());
    EvalReport {
        queries: per.len(),
        hit_at_5: all.0,
        precision_at_5: all.1,
        recall_at_10: all.2,
        mrr: all.3,
        subsets,
        per_query: per,
    }
}

/// Mean Hit@5, P@5, R@10 and reciprocal rank of `qs`.
fn figures(qs: &[&QueryResult]) -> (f64, f64, f64, f64) {
    let n = qs.len().max(1) as f64;
    let mean = |f: &dyn Fn(&QueryResult) -> f64| qs.iter().map(|q| f(q)).sum::<f64>() / n;
    (
        mean(&|q| if q.hit_at_5 { 1.0 } else { 0.0 }),
        mean(&|q| q.precision_at_5),
        mean(&|q| q.recall_at_10),
        mean(&|q| q.reciprocal_rank),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_are_scored_apart_and_together() {
        let set: Vec<Labelled> = [
            r#"{"query": "a", "expected": ["x"]}"#,
            r#"{"subset": "paraphrase", "query": "b", "expected": ["y"]}"#,
            r#"{"subset": "paraphrase", "query": "c", "expected": ["z", "w"]}"#,
        ]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
        let r = evaluate(&set, &mut |q| match q {
            "a" => vec!["x".into()],
            "b" => ["1", "2", "3", "4", "5", "y"].map(String::from).to_vec(),
            _ => vec!["1".into(), "w".into()],
        });
        assert_eq!(r.subsets.len(), 2);
        let (lex, para) = (&r.subsets[0], &r.subsets[1]);
        assert_eq!((lex.subset.as_str(), lex.queries), (LEXICAL, 1));
        assert_eq!((lex.hit_at_5, lex.mrr), (1.0, 1.0));
        assert_eq!((para.subset.as_str(), para.queries), ("paraphrase", 2));
        // b: y at rank 6 (no hit, RR 1/6); c: w at rank 2 (hit, RR 1/2, recall 1/2).
        assert!((para.hit_at_5 - 0.5).abs() < 1e-9);
        assert!((para.mrr - (1.0 / 6.0 + 0.5) / 2.0).abs() < 1e-9);
        assert!((para.recall_at_10 - 0.75).abs() < 1e-9);
        assert!((r.hit_at_5 - 2.0 / 3.0).abs() < 1e-9);
    }
}
