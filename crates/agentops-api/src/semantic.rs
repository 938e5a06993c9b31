//! `context.embeddings`: the configured embedder, the index's vectors kept
//! current with it, and hybrid search. Only front ends use it (commands, the MCP server) — hooks rank
//! lexically and never wait on a model. When the endpoint is down, or the
//! model cannot be loaded, search ranks lexically and says so once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use agentops_context::vectors::{Embedder, VectorSync, Vectors};
use agentops_context::{Hit, IndexError, KnowledgeIndex, SearchFilter};
use agentops_core::config::Config;
use agentops_llm::embed::{OpenAiEmbeddings, StaticModel};

/// How long a search command spends embedding entries that lack a vector
/// (the rest are embedded by the next command, or all by `agentops index`).
pub const SEARCH_SYNC_BUDGET: Duration = Duration::from_secs(5);
/// How long one batch of entries may take to embed when there is no
/// budget (`agentops index`).
const DOCUMENT_TIMEOUT: Duration = Duration::from_secs(60);

struct Api {
    docs: OpenAiEmbeddings,
    query: OpenAiEmbeddings,
    id: String,
}

impl Embedder for Api {
    fn id(&self) -> String {
        self.id.clone()
    }
    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        self.docs.embed(texts).map_err(|e| e.to_string())
    }
    fn embed_query(&self, text: &str) -> Result<Vec<f32>, String> {
        self.query.embed_one(text).map_err(|e| e.to_string())
    }
}

struct Local(StaticModel);

impl Embedder for Local {
    fn id(&self) -> String {
        format!("model2vec:{}", self.0.name())
    }
    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        Ok(texts.iter().map(|t| self.0.embed(t)).collect())
    }
    fn embed_query(&self, text: &str) -> Result<Vec<f32>, String> {
        Ok(self.0.embed(text))
    }
}

/// The embedder `config` names, if any (`work_tree` resolves a relative
/// model path). Errors say which setting is wrong.
pub fn embedder(
    config: &Config,
    work_tree: Option<&std::path::Path>,
    doc_timeout: Duration,
) -> Result<Option<Box<dyn Embedder>>, String> {
    let c = &config.context;
    let Some((kind, what)) = c.embeddings.split_once(':') else {
        return Ok(None);
    };
    match kind {
        "openai" => {
            let base = c
                .embeddings_base_url
                .clone()
                .unwrap_or_else(|| config.llm.openai_base_url.clone());
            let var = c
                .embeddings_key_env
                .clone()
                .unwrap_or_else(|| config.llm.openai_key_env.clone());
            // A local server (Ollama, llama.cpp) needs no key: then none is sent.
            let key = std::env::var(&var).ok().filter(|k| !k.is_empty());
            let query_timeout = Duration::from_millis(c.embeddings_timeout_ms);
            Ok(Some(Box::new(Api {
                docs: OpenAiEmbeddings::new(&base, what, key.clone(), doc_timeout),
                query: OpenAiEmbeddings::new(&base, what, key, query_timeout),
                id: format!("openai:{what}@{}", base.trim_end_matches('/')),
            })))
        }
        "model2vec" => {
            let mut path = std::path::PathBuf::from(what);
            if path.is_relative()
                && let Some(w) = work_tree
            {
                path = w.join(path);
            }
            let m = StaticModel::load(&path)
                .map_err(|e| format!("context.embeddings = \"{}\": {e}", c.embeddings))?;
            Ok(Some(Box::new(Local(m))))
        }
        _ => Ok(None),
    }
}

/// An embedder with the index's vectors, current.
pub struct Semantic {
    embedder: Box<dyn Embedder>,
    vectors: Vectors,
    /// The endpoint failed while the vectors were brought up to date: the
    /// query is not sent (it would fail the same way).
    down: bool,
    /// What bringing the vectors up to date did.
    pub sync: VectorSync,
}

impl Semantic {
    /// The configured embedder and the index's vectors brought up to date
    /// (for at most `budget`; `None`: all of them). `None` when embeddings
    /// are off, or cannot be used now (said once on stderr).
    pub fn prepare(
        idx: &KnowledgeIndex,
        config: &Config,
        work_tree: Option<&std::path::Path>,
        budget: Option<Duration>,
        warn: &dyn Fn(&str),
    ) -> Option<Self> {
        // A batch of entries may take as long as the whole budget.
        let embedder = match embedder(config, work_tree, budget.unwrap_or(DOCUMENT_TIMEOUT)) {
            Ok(Some(e)) => e,
            Ok(None) => return None,
            Err(e) => {
                warn(&format!("{e}: ranking lexically"));
                return None;
            }
        };
        let deadline = budget.map(|b| Instant::now() + b);
        let (vectors, sync) = match idx.vectors(embedder.as_ref(), deadline) {
            Ok(v) => v,
            Err(e) => {
                warn(&format!("embeddings: {e}: ranking lexically"));
                return None;
            }
        };
        let mut down = false;
        if let Some(e) = &sync.error {
            down = e != "out of time";
            warn(&format!(
                "embeddings ({}): {e}; {} without a vector are ranked lexically{}",
                config.context.embeddings,
                agentops_core::counted(sync.missing as u64, "entry", "entries"),
                if down { ", and so is this query" } else { "" }
            ));
        }
        Some(Self {
            embedder,
            vectors,
            down,
            sync,
        })
    }

    /// Entries with a vector.
    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    /// No entry has a vector.
    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    /// The query's vector, or `None` (said once) when the endpoint fails.
    pub fn query(&self, text: &str, warn: &dyn Fn(&str)) -> Option<Vec<f32>> {
        if self.down || self.vectors.is_empty() {
            return None;
        }
        match self.embedder.embed_query(text) {
            Ok(v) => Some(v),
            Err(e) => {
                warn(&format!(
                    "embeddings: the query could not be embedded ({e}): ranking lexically"
                ));
                None
            }
        }
    }

    pub fn vectors(&self) -> &Vectors {
        &self.vectors
    }
}

/// Search, hybrid when `semantic` is given and the query embeds.
pub fn search(
    idx: &KnowledgeIndex,
    semantic: Option<&Semantic>,
    text: &str,
    filter: &SearchFilter,
    candidates: usize,
    utility: &dyn Fn(&[&str]) -> HashMap<String, f64>,
    warn: &dyn Fn(&str),
) -> Result<Vec<Hit>, IndexError> {
    let q = semantic.and_then(|s| s.query(text, warn).map(|q| (s, q)));
    idx.search_hybrid(
        text,
        filter,
        candidates,
        utility,
        q.as_ref().map(|(s, q)| (s.vectors(), q.as_slice())),
    )
}

/// After a memory write from a command (never a hook): the new entry's
/// vector, within `context.embeddings_timeout_ms`. What cannot be done is a
/// warning of the write; the next search or `agentops index` embeds it.
pub fn embed_after_write(
    idx: &KnowledgeIndex,
    config: &Config,
    work_tree: &std::path::Path,
    warnings: &mut Vec<String>,
) {
    let budget = Duration::from_millis(config.context.embeddings_timeout_ms);
    let embedder = match embedder(config, Some(work_tree), budget) {
        Ok(Some(e)) => e,
        Ok(None) => return,
        Err(e) => {
            warnings.push(e);
            return;
        }
    };
    match idx.vectors(embedder.as_ref(), Some(Instant::now() + budget)) {
        Ok((_, sync)) => {
            if let Some(e) = sync.error {
                warnings.push(format!(
                    "embeddings ({}): {e}; {} get a vector at the next search or `agentops index`",
                    config.context.embeddings,
                    agentops_core::counted(sync.missing as u64, "entry", "entries")
                ));
            }
        }
        Err(e) => warnings.push(format!("embeddings: {e}")),
    }
}
