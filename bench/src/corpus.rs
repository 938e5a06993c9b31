//! Corpus generators: repositories of realistic knowledge entries.

use std::path::Path;
use std::process::Command;

const WORDS: &[&str] = &[
    "retry",
    "flaky",
    "network",
    "test",
    "cache",
    "build",
    "deploy",
    "schema",
    "migration",
    "index",
    "query",
    "timeout",
    "token",
    "budget",
    "context",
    "window",
    "agent",
    "workflow",
    "gate",
    "review",
    "commit",
    "branch",
    "merge",
    "conflict",
    "rollback",
    "release",
    "latency",
    "throughput",
    "memory",
    "leak",
    "lock",
    "deadlock",
    "queue",
    "worker",
    "lease",
    "postgres",
    "sqlite",
    "wal",
    "fsync",
    "hook",
    "prompt",
    "model",
    "cost",
    "span",
    "trace",
    "export",
    "otlp",
    "redaction",
    "secret",
    "config",
];

/// A small deterministic generator (xorshift), so corpora are the same every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn words(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| WORDS[self.below(WORDS.len())])
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The text of entry `i`: front matter and a body of 200–3,000 characters.
pub fn entry_text(rng: &mut Rng, i: usize) -> (String, String) {
    let title = format!("{} {i}", rng.words(4));
    let id = format!("learning-20260101-bench-{i}");
    let tags = format!(
        "[{}, {}]",
        WORDS[rng.below(WORDS.len())],
        WORDS[rng.below(WORDS.len())]
    );
    let target = 200 + rng.below(2800);
    let mut body = format!("# {title}\n\n## Context\n\n");
    while body.len() < target {
        body.push_str(&rng.words(12));
        body.push_str(".\n");
    }
    let text = format!(
        "---\nid: {id}\ntype: learning\ntitle: {title}\ntags: {tags}\ncreated: 2026-01-01T00:00:00Z\nmaturity: provisional\n---\n\n{body}"
    );
    (format!("{id}.md"), text)
}

/// Runs git in `dir` with a fixed identity; panics if it fails.
pub fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@localhost")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@localhost")
        .status()
        .expect("git");
    assert!(st.success(), "git {args:?}");
}

/// How a corpus lays its entries out.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// As agentops writes them: `.agents/learnings/<yyyy-mm>/`, spread over 24 months.
    Monthly,
    /// All in `.agents/learnings/` (a hand-imported corpus).
    Flat,
}

/// A git repository at `dir` with `n` committed learnings.
pub fn knowledge_repo(dir: &Path, n: usize, agentops: &Path, layout: Layout) {
    std::fs::create_dir_all(dir).expect("mkdir");
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["config", "user.name", "bench"]);
    git(dir, &["config", "user.email", "bench@localhost"]);
    let st = Command::new(agentops)
        .args(["init", "-q"])
        .current_dir(dir)
        .status()
        .expect("init");
    assert!(st.success());
    let learnings = dir.join(".agents/learnings");
    let mut rng = Rng::new(42);
    for i in 0..n {
        let (name, text) = entry_text(&mut rng, i);
        let folder = match layout {
            Layout::Flat => learnings.clone(),
            Layout::Monthly => learnings.join(format!("{}-{:02}", 2025 + i % 24 / 12, 1 + i % 12)),
        };
        std::fs::create_dir_all(&folder).expect("mkdir");
        std::fs::write(folder.join(name), text).expect("write entry");
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "corpus"]);
}

/// `agentops index --rebuild` in `repo`; how long it took.
pub fn rebuild_index(agentops: &Path, repo: &Path) -> std::time::Duration {
    let t = std::time::Instant::now();
    let st = Command::new(agentops)
        .args(["index", "--rebuild", "-q"])
        .current_dir(repo)
        .status()
        .expect("index");
    assert!(st.success());
    t.elapsed()
}
