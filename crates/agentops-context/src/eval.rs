//! Retrieval evaluation: labelled queries with the entries that should come
//! back, scored as precision at 5, recall at 10 and mean reciprocal rank.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One labelled query (a line of the JSONL file).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Labelled {
    pub query: String,
    /// Ids that are relevant, in no particular order.
    pub expected: Vec<String>,
}

/// Per-query and overall figures.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub queries: usize,
    pub precision_at_5: f64,
    pub recall_at_10: f64,
    pub mrr: f64,
    pub per_query: Vec<QueryResult>,
}

/// How one query did.
#[derive(Debug, Clone, Serialize)]
pub struct QueryResult {
    pub query: String,
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
            query: l.query.clone(),
            precision_at_5: p5,
            recall_at_10: r10,
            reciprocal_rank: rr,
            got: got.into_iter().take(10).collect(),
        });
    }
    let n = per.len().max(1) as f64;
    EvalReport {
        queries: per.len(),
        precision_at_5: per.iter().map(|q| q.precision_at_5).sum::<f64>() / n,
        recall_at_10: per.iter().map(|q| q.recall_at_10).sum::<f64>() / n,
        mrr: per.iter().map(|q| q.reciprocal_rank).sum::<f64>() / n,
        per_query: per,
    }
}
