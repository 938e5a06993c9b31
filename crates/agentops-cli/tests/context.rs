//! Factor II through the real binary: the index stays current, search and
//! context packets rank and budget, feedback moves utility and maturity, the
//! guard reads transcripts, and retrieval quality holds on the labelled set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use agentops_testkit::TestContext;
use pretty_assertions::assert_eq;

fn ctx() -> TestContext {
    let ctx = TestContext::new(env!("CARGO_BIN_EXE_agentops"));
    ctx.run(&["init", "-q"]).ok();
    ctx
}

fn json(ctx: &TestContext, args: &[&str]) -> serde_json::Value {
    let r = ctx.run(args);
    serde_json::from_str(r.ok()).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

fn learn(ctx: &TestContext, title: &str, args: &[&str]) -> String {
    let mut all = vec!["learn", "--json", title];
    all.extend_from_slice(args);
    json(ctx, &all)["id"].as_str().unwrap().to_owned()
}

fn search_ids(ctx: &TestContext, q: &str) -> Vec<String> {
    json(ctx, &["search", "--json", q])
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn index_follows_writes_edits_and_deletions() {
    let ctx = ctx();
    let a = learn(
        &ctx,
        "Retry flaky network tests",
        &["--body", "wrap the client in retry"],
    );
    assert_eq!(search_ids(&ctx, "flaky network"), vec![a.clone()]);
    let b = learn(
        &ctx,
        "Network timeouts in staging",
        &["--body", "raise the timeout"],
    );
    assert_eq!(search_ids(&ctx, "network").len(), 2);
    // An in-place edit that is committed (HEAD's .agents tree changes).
    let path = json(&ctx, &["knowledge", "show", &b, "--json"])["path"]
        .as_str()
        .unwrap()
        .to_owned();
    let text = std::fs::read_to_string(ctx.path(&path))
        .unwrap()
        .replace("raise the timeout", "use exponential backoff for sockets");
    std::fs::write(ctx.path(&path), text).unwrap();
    ctx.git(&["commit", "-qam", "edit by hand"]);
    assert_eq!(
        search_ids(&ctx, "exponential backoff sockets"),
        vec![b.clone()]
    );
    // A hand-written file in a new folder, then deleting it.
    ctx.write(
        ".agents/decisions/team/use-postgres.md",
        "# Use Postgres for teams\n\nShared runs need a shared database.\n",
    );
    assert_eq!(
        search_ids(&ctx, "postgres shared database"),
        vec!["use-postgres".to_owned()]
    );
    std::fs::remove_file(ctx.path(".agents/decisions/team/use-postgres.md")).unwrap();
    assert!(search_ids(&ctx, "postgres shared database").is_empty());
    let r = json(&ctx, &["index", "--json"]);
    assert_eq!(r["entries"], 2);
    assert_eq!(
        (
            r["added"].as_u64(),
            r["updated"].as_u64(),
            r["removed"].as_u64()
        ),
        (Some(0), Some(0), Some(0))
    );
}

#[test]
fn uncommitted_in_place_edits_are_caught_by_a_full_check() {
    let ctx = ctx();
    let a = learn(
        &ctx,
        "Cache the toolchain",
        &["--body", "use the registry cache"],
    );
    search_ids(&ctx, "cache");
    let path = json(&ctx, &["knowledge", "show", &a, "--json"])["path"]
        .as_str()
        .unwrap()
        .to_owned();
    // Rewrite in place: the folder's mtime does not change.
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(ctx.path(&path))
        .unwrap();
    let text = std::fs::read_to_string(ctx.path(".agents/config.toml")).unwrap_or_default();
    drop(text);
    f.write_all(
        b"---\nid: cache-note\ntitle: Cache the toolchain\n---\n\nuse sccache for rust builds\n",
    )
    .unwrap();
    drop(f);
    let r = json(&ctx, &["index", "--json"]);
    assert_eq!(r["updated"], 1);
    assert_eq!(search_ids(&ctx, "sccache"), vec!["cache-note".to_owned()]);
}

#[test]
fn broken_files_are_skipped_and_a_corrupt_index_is_rebuilt() {
    let ctx = ctx();
    learn(
        &ctx,
        "Good entry about queues",
        &["--body", "bounded queues"],
    );
    ctx.write(
        ".agents/learnings/broken.md",
        "---\ntitle: x\nmaturity: golden\n---\nqueues\n",
    );
    let r = ctx.run(&["search", "queues"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("Good entry about queues"));
    assert!(
        r.stderr.contains(
            "warning: .agents/learnings/broken.md:3: field `maturity`: unknown maturity `golden`"
        ),
        "{}",
        r.stderr
    );
    // Scribble over the index files: the next command rebuilds and says so.
    let idx = ctx.git_dir().join("agentops/index/tantivy");
    for e in std::fs::read_dir(&idx).unwrap().flatten() {
        std::fs::write(e.path(), b"garbage").unwrap();
    }
    let r = ctx.run(&["search", "queues"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("rebuilt the search index"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("Good entry about queues"));
    // A missing index too.
    std::fs::remove_dir_all(ctx.git_dir().join("agentops/index")).unwrap();
    let r = ctx.run(&["search", "queues"]);
    assert!(
        r.stderr.contains("rebuilt the search index (no index yet)"),
        "{}",
        r.stderr
    );
}

#[test]
fn search_handles_odd_queries_and_filters() {
    let ctx = ctx();
    learn(
        &ctx,
        "Deploy with feature flags",
        &["--body", "roll out behind a flag", "--tag", "release"],
    );
    learn(
        &ctx,
        "Deploy freeze on Fridays",
        &["--body", "no deploys", "--type", "decision"],
    );
    for q in [
        "",
        "   ",
        "AND OR",
        "\"unclosed",
        "title:deploy -flags",
        "(((",
        "*",
        "deploy^3",
    ] {
        let r = ctx.run(&["search", q]);
        assert_eq!(r.code, 0, "{q:?}: {}", r.stderr);
    }
    let huge = "deploy ".repeat(15_000); // ~105 KB: argv caps one argument at 128 KiB
    assert_eq!(ctx.run(&["search", &huge]).code, 0);
    assert_eq!(search_ids(&ctx, "deploy").len(), 2);
    let only: Vec<serde_json::Value> =
        json(&ctx, &["search", "--json", "deploy", "--type", "decision"])
            .as_array()
            .unwrap()
            .clone();
    assert_eq!(only.len(), 1);
    let tagged = json(&ctx, &["search", "--json", "deploy", "--tag", "release"]);
    assert_eq!(tagged.as_array().unwrap().len(), 1);
    let hit = &tagged[0];
    assert!(hit["snippet"].as_str().unwrap().contains("**"), "{hit}");
    assert_eq!(ctx.run(&["search", "x", "--type", "nope"]).code, 2);
}

#[test]
fn context_packet_budget_tiers_explain_and_journal() {
    let ctx = ctx();
    for i in 0..8 {
        learn(
            &ctx,
            &format!("Flaky test lesson {i}"),
            &[
                "--context",
                &"The flaky integration tests failed again in CI. ".repeat(8),
                "--learning",
                &format!("Lesson {i}: make flaky tests deterministic."),
            ],
        );
    }
    learn(
        &ctx,
        "Sleeping in flaky tests",
        &[
            "--type",
            "anti-pattern",
            "--body",
            "Fixed sleeps make flaky tests worse.",
        ],
    );
    let p = json(
        &ctx,
        &[
            "context",
            "fix flaky tests",
            "--format",
            "json",
            "--explain",
            "--budget",
            "600",
        ],
    );
    let tokens = p["tokens"].as_u64().unwrap();
    assert!(tokens <= 600, "{tokens}");
    let decisions: Vec<&str> = p["explain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["decision"].as_str().unwrap())
        .collect();
    assert!(
        decisions.contains(&"full") && decisions.contains(&"summary"),
        "{decisions:?}"
    );
    assert_eq!(decisions.len(), 9);
    let text = p["text"].as_str().unwrap();
    assert!(text.starts_with("# Context packet\n"));
    assert!(text.contains("## Warnings: anti-patterns"), "{text}");
    for x in p["explain"].as_array().unwrap() {
        assert!(!x["reason"].as_str().unwrap().is_empty());
    }
    // Default budget: min(packet_max, 0.4 × window − used).
    let p = json(
        &ctx,
        &[
            "context",
            "fix flaky tests",
            "--format",
            "json",
            "--window",
            "10000",
            "--used",
            "3500",
        ],
    );
    assert_eq!(p["budget"], 500);
    let p = json(
        &ctx,
        &[
            "context",
            "fix flaky tests",
            "--format",
            "json",
            "--window",
            "10000",
            "--used",
            "9000",
        ],
    );
    assert_eq!(p["budget"], 0);
    assert_eq!(p["text"], "");
    // Same inputs, same packet.
    let a = ctx.run(&["context", "fix flaky tests", "--budget", "800"]);
    let b = ctx.run(&["context", "fix flaky tests", "--budget", "800"]);
    assert_eq!(a.ok(), b.ok());
    // The md form with --explain keeps stdout a clean packet.
    let r = ctx.run(&[
        "context",
        "fix flaky tests",
        "--budget",
        "800",
        "--explain",
        "--session",
        "s-9",
    ]);
    assert!(r.ok().starts_with("# Context packet"));
    assert!(
        r.stderr
            .contains("score = relevance × freshness × utility × maturity"),
        "{}",
        r.stderr
    );
    // Recorded in the journal with the cited ids.
    let store = agentops_store::SqliteStore::open(
        &ctx.git_dir().join("agentops/state.db"),
        agentops_store::sqlite_open_options(false),
    )
    .unwrap();
    use agentops_store::EventLog;
    let events = store
        .read(&agentops_store::Query {
            kinds: vec![agentops_core::EventKind::ContextAssembled],
            run_id: Some(agentops_core::RunId::parse("s-9").unwrap()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(events.len(), 1);
    assert!(!events[0].body["cited"].as_array().unwrap().is_empty());
}

#[test]
fn feedback_moves_utility_then_maturity() {
    let ctx = ctx();
    let a = learn(
        &ctx,
        "Helpful note on caching",
        &["--body", "cache keys include the lockfile"],
    );
    let b = learn(
        &ctx,
        "Harmful note on caching",
        &["--body", "cache everything forever"],
    );
    let f = json(&ctx, &["feedback", "--json", &a, "helpful"]);
    assert_eq!((f["utility"].as_f64().unwrap() * 1000.0).round(), 550.0);
    assert_eq!(f["maturity"], "provisional");
    json(&ctx, &["feedback", "--json", &a, "used"]);
    let f = json(&ctx, &["feedback", "--json", &a, "helpful"]);
    assert_eq!(f["events"], 3);
    assert_eq!(f["maturity"], "established");
    assert!(f["write"]["commit"].is_string());
    let shown = json(&ctx, &["knowledge", "show", &a, "--json"]);
    assert_eq!(shown["maturity"], "established");
    // Harmful feedback pulls the other one under 0.3: deprecated.
    let mut last = serde_json::Value::Null;
    for _ in 0..6 {
        last = json(&ctx, &["feedback", "--json", &b, "harmful"]);
    }
    assert_eq!(last["maturity"], "deprecated");
    // Utility moves ranking: the helpful, established entry comes first.
    assert_eq!(search_ids(&ctx, "caching note")[0], a);
    assert_eq!(ctx.run(&["feedback", &a, "awesome"]).code, 2);
    assert_eq!(ctx.run(&["feedback", "no-such-entry", "helpful"]).code, 1);
}

#[test]
fn guard_reports_bands() {
    let ctx = ctx();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testkit/fixtures/claude-code/transcript-sample.jsonl");
    let fixture = fixture.to_str().unwrap();
    let g = json(&ctx, &["guard", "--json", "--transcript", fixture]);
    assert_eq!(g["used"], 12564);
    assert_eq!(g["band"], "green");
    let g = json(
        &ctx,
        &[
            "guard",
            "--json",
            "--transcript",
            fixture,
            "--window",
            "30000",
        ],
    );
    assert_eq!(g["band"], "red");
    let g = json(
        &ctx,
        &[
            "guard",
            "--json",
            "--transcript",
            fixture,
            "--window",
            "20000",
        ],
    );
    assert_eq!(g["band"], "critical");
    let r = ctx.run(&["guard", "--transcript", fixture, "--window", "50000"]);
    assert_eq!(
        r.ok(),
        "amber: 12564 of 50000 tokens (25.1%), claude-sonnet-4-5 — at most 40% of the window: keep the remaining work focused\n"
    );
    let r = ctx.run(&["guard", "--transcript", "/nonexistent/t.jsonl"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("/nonexistent/t.jsonl: cannot read the transcript"),
        "{}",
        r.stderr
    );
}

#[test]
fn retrieval_quality_on_the_labelled_set() {
    let ctx = ctx();
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../agentops-context/tests/eval");
    let q = dir.join("queries.jsonl");
    let corpus = dir.join("corpus");
    let eval = |env: &[(&str, String)]| -> serde_json::Value {
        let args = [
            "eval",
            "retrieval",
            "--json",
            q.to_str().unwrap(),
            "--corpus",
            corpus.to_str().unwrap(),
        ];
        serde_json::from_str(ctx.run_env(&args, env).ok()).unwrap()
    };
    let r = eval(&[]);
    assert!(r["queries"].as_u64().unwrap() >= 80);
    assert_eq!(r["ranking"], "ranking: lexical + expansion");
    let subset = |r: &serde_json::Value, name: &str, key: &str| {
        r["subsets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["subset"] == name)
            .unwrap_or_else(|| panic!("no subset {name}: {r}"))[key]
            .as_f64()
            .unwrap()
    };
    // The figures of docs/factor-2-context.md, with a little room.
    assert!(
        subset(&r, "lexical", "hit_at_5") >= 0.97,
        "{}",
        r["subsets"]
    );
    assert!(subset(&r, "lexical", "mrr") >= 0.95, "{}", r["subsets"]);
    assert!(
        subset(&r, "paraphrase", "hit_at_5") >= 0.72,
        "{}",
        r["subsets"]
    );
    assert!(subset(&r, "paraphrase", "mrr") >= 0.58, "{}", r["subsets"]);
    // Expansion is what lifts the paraphrase MRR above the plain ranking's.
    let plain = eval(&[("AGENTOPS_CONTEXT_EXPANSION", "false".into())]);
    assert_eq!(plain["ranking"], "ranking: lexical");
    assert!(subset(&plain, "paraphrase", "mrr") < subset(&r, "paraphrase", "mrr"));
    // Fused with a weak vector ranking (the scripted server's hashed words),
    // lexical queries keep their hits: relevance still comes first. (With
    // reciprocal rank fusion, maturity and freshness reordered the flat
    // fused scores and lexical Hit@5 fell to 0.50.)
    let server = agentops_llm::scripted::ScriptedServer::start(Default::default()).unwrap();
    let hybrid = eval(&[
        ("AGENTOPS_CONTEXT_EMBEDDINGS", "openai:scripted".into()),
        ("AGENTOPS_CONTEXT_EMBEDDINGS_BASE_URL", server.openai_base()),
    ]);
    assert!(
        hybrid["ranking"]
            .as_str()
            .unwrap()
            .contains("+ vectors (openai:scripted, 63 entries)"),
        "{}",
        hybrid["ranking"]
    );
    assert!(
        subset(&hybrid, "lexical", "hit_at_5") >= 0.95,
        "{}",
        hybrid["subsets"]
    );
    assert!(
        subset(&hybrid, "lexical", "mrr") >= 0.9,
        "{}",
        hybrid["subsets"]
    );
    ctx.write("bad.jsonl", "{\"query\": \"x\"}\n");
    let r = ctx.run(&["eval", "retrieval", "bad.jsonl"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("bad.jsonl:1: missing field `expected`"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_rewrite_within_the_same_clock_tick_is_not_missed() {
    let ctx = ctx();
    let path = ".agents/learnings/racy.md";
    ctx.write(path, "# Racy note\n\nalpha alpha alpha\n");
    assert_eq!(search_ids(&ctx, "alpha"), vec!["racy".to_owned()]);
    // Same size, same inode, and the mtime put back: only the content differs,
    // as when two writes land within one tick of the file-time clock.
    let full = ctx.path(path);
    let before = std::fs::metadata(&full).unwrap().modified().unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&full)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"# Racy note\n\nomega omega omega\n"))
        .unwrap();
    let d = before.duration_since(std::time::UNIX_EPOCH).unwrap();
    let st = std::process::Command::new("touch")
        .args([
            "-m",
            "-d",
            &format!("@{}.{:09}", d.as_secs(), d.subsec_nanos()),
        ])
        .arg(&full)
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(
        std::fs::metadata(&full).unwrap().modified().unwrap(),
        before
    );
    let r = json(&ctx, &["index", "--json"]);
    assert_eq!(r["updated"], 1, "{r}");
    assert_eq!(search_ids(&ctx, "omega"), vec!["racy".to_owned()]);
}

/// A memory write keeps the index current at once, without loading a
/// tokenizer (its tokens are estimated, over the real count); a full check
/// counts them exactly.
#[test]
fn a_memory_write_updates_the_index_and_a_full_check_counts_its_tokens() {
    let ctx = TestContext::new(env!("CARGO_BIN_EXE_agentops"));
    assert_eq!(ctx.run(&["init", "-q"]).code, 0);
    let manifest = || -> serde_json::Value {
        let p = ctx.git_dir().join("agentops/index/manifest.json");
        serde_json::from_slice(&std::fs::read(p).expect("init built the index")).unwrap()
    };
    let r = ctx.run(&[
        "learn",
        "Retry with jittered backoff",
        "--body",
        "Spread retries with full jitter after an outage.",
        "-q",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = manifest();
    assert_eq!(m["entries"], 1);
    assert_eq!(m["estimated"].as_array().map(Vec::len), Some(1), "{m}");
    let search = ctx.run(&["search", "jitter", "--json"]);
    assert!(search.ok().contains("Retry with jittered backoff"));
    assert_eq!(ctx.run(&["index", "-q"]).code, 0);
    assert_eq!(manifest()["estimated"].as_array().map(Vec::len), Some(0));
}

/// Titles come from the first heading outside fenced code, any level when
/// there is no `# ` (a `# ` line in a code block is a comment).
#[test]
fn titles_skip_code_fences() {
    let ctx = ctx();
    ctx.write(
        ".agents/learnings/monad-notes.md",
        "Intro.\n\n```haskell\n# do something monadic idk\nmain = pure ()\n```\n\n## Sequencing effects with do-notation\n\nThe do block desugars to binds.\n",
    );
    ctx.git(&["add", "-A"]);
    ctx.git(&["commit", "-qm", "notes"]);
    let shown = json(&ctx, &["knowledge", "show", "monad-notes", "--json"]);
    assert_eq!(shown["title"], "Sequencing effects with do-notation");
    assert_eq!(search_ids(&ctx, "sequencing effects"), vec!["monad-notes"]);
}

/// An OpenAI-compatible embeddings server on loopback (the scripted one:
/// deterministic vectors, every request recorded).
fn embeddings_config(ctx: &TestContext, base: &str) {
    ctx.write(
        ".agents/config.toml",
        &format!(
            "[context]\nembeddings = \"openai:test-embed\"\nembeddings_base_url = \"{base}\"\nembeddings_key_env = \"TEST_EMBED_KEY\"\nembeddings_timeout_ms = 500\n"
        ),
    );
}

#[test]
fn hybrid_search_embeds_entries_once_and_falls_back_to_lexical_when_the_endpoint_is_down() {
    use agentops_llm::scripted::{Script, ScriptedServer};
    let ctx = ctx();
    let server = ScriptedServer::start(Script::default()).unwrap();
    let a = learn(
        &ctx,
        "Reconnect with jittered backoff",
        &["--body", "clients retry at random delays after an outage"],
    );
    let b = learn(
        &ctx,
        "Disk full from logs",
        &["--body", "rotate logs before the volume fills"],
    );
    embeddings_config(&ctx, &server.openai_base());
    let key = [("TEST_EMBED_KEY", "sk-test-0123".to_owned())];
    let r = ctx.run_env(&["index"], &key);
    assert!(
        r.ok()
            .contains("vectors (openai:test-embed): 2 entries with one, 2 embedded now"),
        "{}",
        r.stdout
    );
    let got = server.received();
    assert_eq!(got.len(), 1, "one batch for both entries");
    assert_eq!(got[0].path, "/v1/embeddings");
    assert_eq!(got[0].api, "embeddings");
    assert_eq!(got[0].body["model"], "test-embed");
    assert_eq!(got[0].body["input"].as_array().unwrap().len(), 2);
    assert!(
        got[0]
            .headers
            .iter()
            .any(|(k, v)| k == "authorization" && v == "Bearer sk-test-0123")
    );
    let vectors = ctx.git_dir().join("agentops/index/vectors.bin");
    assert!(vectors.is_file());

    // A search embeds the query only: the entries' vectors are stored.
    let hits = json_env(&ctx, &["search", "--json", "random delays"], &key);
    assert_eq!(hits[0]["id"], a.as_str(), "{hits}");
    assert!(
        hits[0]["score"]["relevance"].as_f64().unwrap() > 1.5,
        "first in both lists"
    );
    let got = server.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].body["input"], serde_json::json!(["random delays"]));

    // A new entry is embedded by the next search, alone.
    let c = learn(
        &ctx,
        "Pool exhausted",
        &["--body", "transactions held across calls"],
    );
    json_env(&ctx, &["search", "--json", "pool"], &key);
    let got = server.received();
    assert_eq!(got.len(), 4, "the new entry, then the query");
    assert_eq!(got[2].body["input"].as_array().unwrap().len(), 1);
    assert!(
        got[2].body["input"][0]
            .as_str()
            .unwrap()
            .contains("Pool exhausted")
    );

    // The endpoint goes away: lexical results, one warning, exit 0.
    drop(server);
    let r = ctx.run_env(&["search", "--json", "rotate logs"], &key);
    let hits: serde_json::Value = serde_json::from_str(r.ok()).unwrap();
    assert_eq!(hits[0]["id"], b.as_str());
    assert_eq!(
        r.stderr.matches("ranking lexically").count(),
        1,
        "{}",
        r.stderr
    );
    // An entry written while it is down: `index` says so and exits 1.
    learn(
        &ctx,
        "Another note",
        &["--body", "written while the endpoint is down"],
    );
    let r = ctx.run_env(&["index"], &key);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("1 without"), "{}", r.stdout);
    assert!(
        r.stderr.contains("without a vector are ranked lexically"),
        "{}",
        r.stderr
    );
    let _ = c;
    // The key reached neither the files, the index, the vectors nor the journal.
    let out = std::process::Command::new("grep")
        .args(["-rl", "sk-test-0123"])
        .arg(&ctx.root)
        .output()
        .unwrap();
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_local_static_model_ranks_without_any_server() {
    let ctx = ctx();
    // A tiny model2vec-format model the test builds: "outage" and "herd" sit
    // near "jitter"; "disk" is far from both.
    let vocab = [
        "[UNK]", "outage", "herd", "jitter", "backoff", "disk", "logs",
    ];
    let rows = vec![
        vec![0.0, 0.0, 0.0],
        vec![1.0, 0.1, 0.0],
        vec![0.9, 0.2, 0.0],
        vec![1.0, 0.0, 0.0],
        vec![0.8, 0.1, 0.1],
        vec![0.0, 0.0, 1.0],
        vec![0.0, 0.0, 1.0],
    ];
    agentops_llm::embed::write_static_model(&ctx.path("models/tiny"), &vocab, &rows).unwrap();
    let a = learn(
        &ctx,
        "Use jitter",
        &["--body", "spread retries with backoff"],
    );
    learn(&ctx, "Disk full", &["--body", "rotate logs"]);
    ctx.write(
        ".agents/config.toml",
        "[context]\nembeddings = \"model2vec:models/tiny\"\n",
    );
    // No word of the query is in the entry: only the vectors find it.
    let hits = json(&ctx, &["search", "--json", "outage herd"]);
    assert_eq!(hits[0]["id"], a.as_str(), "{hits}");
    assert_eq!(hits.as_array().unwrap().len(), 1, "cosine <= 0 is no match");
    // A broken model is named, and search goes on lexically.
    std::fs::write(ctx.path("models/tiny/tokenizer.json"), "{").unwrap();
    let r = ctx.run(&["search", "rotate"]);
    assert_eq!(r.code, 0);
    assert!(
        r.stderr.contains("models/tiny/tokenizer.json: line 1")
            && r.stderr.contains("ranking lexically"),
        "{}",
        r.stderr
    );
}

fn json_env(ctx: &TestContext, args: &[&str], env: &[(&str, String)]) -> serde_json::Value {
    let r = ctx.run_env(args, env);
    serde_json::from_str(r.ok()).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}
