//! Issue 18 figures: retrieval quality per subset with each technique on and
//! off (the checked-in eval set), hybrid ranking against the scripted
//! embeddings server (plumbing only: its vectors are hashed words), search
//! latency at 100,000 entries lexical and hybrid with the embedding call
//! timed apart, and the index build rate with embeddings.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use agentops_context::vectors::Embedder;
use agentops_context::{KnowledgeIndex, SearchFilter};
use agentops_llm::embed::OpenAiEmbeddings;
use agentops_llm::scripted::{Script, ScriptedServer};
use agentops_store::RepoLayout;

use crate::corpus::Layout;
use crate::stats::{Samples, ms};

/// The scripted server's embeddings, under the id the CLI gives them (so
/// `agentops search` finds these vectors current).
struct Scripted(OpenAiEmbeddings, String);

impl Embedder for Scripted {
    fn id(&self) -> String {
        format!("openai:scripted@{}", self.1)
    }
    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        self.0.embed(texts).map_err(|e| e.to_string())
    }
    fn embed_query(&self, text: &str) -> Result<Vec<f32>, String> {
        self.0.embed_one(text).map_err(|e| e.to_string())
    }
}

/// One whole `agentops search` process, which must succeed and warn nothing.
fn search_process(bin: &Path, repo: &Path, q: &str, env: &[(&str, &str)]) -> Duration {
    let t = Instant::now();
    let o = Command::new(bin)
        .args(["search", q])
        .envs(env.iter().copied())
        .current_dir(repo)
        .output()
        .expect("search");
    let d = t.elapsed();
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    d
}

fn eval(bin: &Path, repo: &Path, env: &[(&str, &str)], extra: &[&str]) -> serde_json::Value {
    let set = Path::new("crates/agentops-context/tests/eval");
    let root = std::env::current_dir().expect("cwd");
    let mut cmd = Command::new(bin);
    cmd.args(["eval", "retrieval", "--json"])
        .arg(root.join(set).join("queries.jsonl"))
        .arg("--corpus")
        .arg(root.join(set).join("corpus"))
        .args(extra)
        .current_dir(repo);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("eval");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("eval json")
}

fn row(label: &str, r: &serde_json::Value) {
    let sub = |name: &str| {
        r["subsets"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["subset"] == name))
            .map(|s| {
                format!(
                    "{:.3} | {:.3} | {:.3}",
                    s["hit_at_5"].as_f64().unwrap_or(0.0),
                    s["mrr"].as_f64().unwrap_or(0.0),
                    s["recall_at_10"].as_f64().unwrap_or(0.0)
                )
            })
            .unwrap_or_default()
    };
    println!("| {label} | {} | {} |", sub("paraphrase"), sub("lexical"));
}

pub fn run(quick: bool) {
    let bin = crate::agentops_bin();
    let server = ScriptedServer::start(Script::default()).expect("scripted server");
    let tmp = tempfile::tempdir().expect("tempdir");
    let empty = tmp.path().join("empty");
    crate::corpus::knowledge_repo(&empty, 0, &bin, Layout::Monthly);

    println!("## retrieval ({})", if quick { "quick" } else { "full" });
    println!();
    println!(
        "Checked-in set: crates/agentops-context/tests/eval (63 entries; 40 paraphrase, 46 lexical queries)."
    );
    println!();
    println!("| ranking | paraphrase Hit@5 | MRR | Recall@10 | lexical Hit@5 | MRR | Recall@10 |");
    println!("|---|---|---|---|---|---|---|");
    let off = [("AGENTOPS_CONTEXT_EXPANSION", "false")];
    row("lexical, no expansion", &eval(&bin, &empty, &off, &[]));
    row(
        "lexical + expansion (the default)",
        &eval(&bin, &empty, &[], &[]),
    );
    let base = server.openai_base();
    let hybrid = [
        ("AGENTOPS_CONTEXT_EMBEDDINGS", "openai:scripted"),
        ("AGENTOPS_CONTEXT_EMBEDDINGS_BASE_URL", base.as_str()),
    ];
    let mut both = hybrid.to_vec();
    both.extend(off);
    row(
        "hybrid, scripted hashed-word vectors, no expansion (plumbing only)",
        &eval(&bin, &empty, &both, &[]),
    );
    row(
        "hybrid, scripted hashed-word vectors + expansion (plumbing only)",
        &eval(&bin, &empty, &hybrid, &[]),
    );
    println!();

    let n = if quick { 10_000 } else { 100_000 };
    let repo = tmp.path().join("repo");
    crate::corpus::knowledge_repo(&repo, n, &bin, Layout::Monthly);
    crate::corpus::rebuild_index(&bin, &repo);
    let qs = crate::context::queries(if quick { 20 } else { 40 });
    println!("| measurement, {n} entries | median | p99 | note |");
    println!("|---|---|---|---|");
    // Whole process, as a user or a hook would pay it: before any vectors
    // exist (the hybrid processes below read 110 MB each).
    let mut whole = Vec::new();
    let mut whole_off = Vec::new();
    for _ in 0..2 {
        for q in qs.iter().take(20) {
            whole.push(search_process(&bin, &repo, q, &[]));
            whole_off.push(search_process(&bin, &repo, q, &off));
        }
    }
    for (label, s, note) in [
        (
            "`agentops search`, whole process, lexical + expansion (default)",
            whole,
            "target ≤ 15 ms at 100k",
        ),
        (
            "`agentops search`, whole process, no expansion",
            whole_off,
            "",
        ),
    ] {
        let s = Samples::new(s);
        println!(
            "| {label} | {} | {} | {note} |",
            ms(s.median()),
            ms(s.pct(0.99))
        );
    }
    let layout = RepoLayout::discover(&repo).expect("layout");
    let config = agentops_store::project::load_config(Some(&layout), Vec::new()).expect("config");
    let (mut idx, _) = KnowledgeIndex::open(&layout, &config, false, false).expect("open");

    // Vectors for every entry from the scripted server: the build cost.
    let emb = Scripted(
        OpenAiEmbeddings::new(&base, "scripted", None, Duration::from_secs(60)),
        base.clone(),
    );
    let t = Instant::now();
    let (vectors, sync) = idx.vectors(&emb, None).expect("vectors");
    let build = t.elapsed();
    assert_eq!(sync.missing, 0, "{:?}", sync.error);
    let file = std::fs::metadata(agentops_context::vectors::Vectors::path(
        &layout.state_dir().join("index"),
    ))
    .map(|m| m.len())
    .unwrap_or(0);
    println!(
        "| embedding every entry (scripted server, batches of 64, 256 dims) | {:.0} entries/s ({:.1} s; {:.1} s of it in the embedder) | – | vectors.bin {:.1} MB |",
        n as f64 / build.as_secs_f64(),
        build.as_secs_f64(),
        sync.embed_ms / 1000.0,
        file as f64 / 1e6
    );
    let t = Instant::now();
    let (_, again) = idx.vectors(&emb, None).expect("vectors");
    println!(
        "| vectors current: load and generation check | {} | – | {} embedded |",
        ms(t.elapsed()),
        again.embedded
    );

    let none = |_: &[&str]| std::collections::HashMap::new();
    let f = SearchFilter::default();
    let mut plain = Vec::new();
    let mut expanded = Vec::new();
    let mut embed_call = Vec::new();
    let mut fused = Vec::new();
    for _ in 0..3 {
        for q in &qs {
            idx.set_expansion(false);
            let t = Instant::now();
            idx.search(q, &f, 50, &none).expect("search");
            plain.push(t.elapsed());
            idx.set_expansion(true);
            let t = Instant::now();
            idx.search(q, &f, 50, &none).expect("search");
            expanded.push(t.elapsed());
            let t = Instant::now();
            let qv = emb.embed_query(q).expect("query vector");
            embed_call.push(t.elapsed());
            let t = Instant::now();
            idx.search_hybrid(q, &f, 50, &none, Some((&vectors, &qv)))
                .expect("hybrid");
            fused.push(t.elapsed());
        }
    }
    for (label, s, note) in [
        (
            "search in-process, lexical, no expansion",
            plain,
            "the ranking before this issue had 3 clauses a term, this has 2",
        ),
        (
            "search in-process, lexical + expansion (default)",
            expanded,
            "two BM25 passes",
        ),
        (
            "query embedding call (scripted server on loopback)",
            embed_call,
            "a hosted model adds its own latency",
        ),
        (
            "search in-process, hybrid (expansion + cosine over every vector + score fusion)",
            fused,
            "without the embedding call",
        ),
    ] {
        let s = Samples::new(s);
        println!(
            "| {label} | {} | {} | {note} |",
            ms(s.median()),
            ms(s.pct(0.99))
        );
    }

    // Whole process, hybrid: the CLI finds these vectors current.
    let s = Samples::new(
        qs.iter()
            .take(20)
            .map(|q| search_process(&bin, &repo, q, &hybrid))
            .collect(),
    );
    println!(
        "| `agentops search`, whole process, hybrid | {} | {} | loads vectors.bin, embeds the query |",
        ms(s.median()),
        ms(s.pct(0.99))
    );
    drop(idx);
}
