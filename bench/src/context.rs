//! Issue 4 figures: index build rate; the no-change freshness check at
//! 10,000 entries; whole-process `agentops search` and `agentops context` at
//! 10,000 and 100,000 entries, beside `rg -i` over the same `.agents/`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agentops_context::KnowledgeIndex;
use agentops_store::RepoLayout;

use crate::corpus::{Layout, Rng};
use crate::stats::{Samples, ms};

fn timed(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("spawn");
    let d = t.elapsed();
    // rg exits 1 when nothing matched; anything else is a failure.
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    d
}

/// `n` queries of three words of the corpus's vocabulary (the same every run).
pub fn queries(n: usize) -> Vec<String> {
    let mut rng = Rng::new(7);
    (0..n).map(|_| rng.words(3)).collect()
}

pub fn run(quick: bool) {
    let sizes: &[usize] = if quick {
        &[2_000, 10_000]
    } else {
        &[10_000, 100_000]
    };
    let bin = crate::agentops_bin();
    println!("## context ({})", if quick { "quick" } else { "full" });
    println!();
    println!("| measurement | agentops | baseline | target |");
    println!("|---|---|---|---|");
    for &n in sizes {
        let tmp = tempfile::tempdir().expect("tempdir");
        let repo = tmp.path().join("repo");
        crate::corpus::knowledge_repo(&repo, n, &bin, Layout::Monthly);

        // Build from scratch (parsing, three token counts per entry, indexing).
        let build = crate::corpus::rebuild_index(&bin, &repo);
        println!(
            "| index build, {n} entries (parse, count 3 tiers with o200k, index) | {:.0} entries/s ({:.1} s) | – | report |",
            n as f64 / build.as_secs_f64(),
            build.as_secs_f64()
        );

        // The check every command does first, with nothing changed, in-process.
        let layout = RepoLayout::discover(&repo).expect("layout");
        let config =
            agentops_store::project::load_config(Some(&layout), Vec::new()).expect("config");
        let fresh = Samples::new(
            (0..30)
                .map(|_| {
                    let t = Instant::now();
                    let (_, r) =
                        KnowledgeIndex::open(&layout, &config, false, false).expect("open");
                    assert!(r.added + r.updated + r.removed == 0 && r.rebuilt.is_none());
                    t.elapsed()
                })
                .collect(),
        );
        println!(
            "| no-change freshness check + index open, {n} entries, in-process | median {} · p99 {} | – | ≤ 5 ms at 10k |",
            ms(fresh.median()),
            ms(fresh.pct(0.99))
        );

        let qs = queries(if quick { 10 } else { 20 });
        let rounds = 3;
        let mut ours = Vec::new();
        let mut ctx = Vec::new();
        let mut rg = Vec::new();
        for _ in 0..rounds {
            for q in &qs {
                ours.push(timed(
                    Command::new(&bin).args(["search", q]).current_dir(&repo),
                ));
                ctx.push(timed(
                    Command::new(&bin).args(["context", q]).current_dir(&repo),
                ));
                let pattern = q.split_whitespace().collect::<Vec<_>>().join("|");
                rg.push(timed(
                    Command::new("rg")
                        .args(["-i", "-l", &pattern, ".agents"])
                        .current_dir(&repo),
                ));
            }
        }
        let (ours, ctx, rg) = (Samples::new(ours), Samples::new(ctx), Samples::new(rg));
        let x = rg.median().as_secs_f64() / ours.median().as_secs_f64();
        println!(
            "| `agentops search`, whole process, {n} entries | median {} · p99 {} | `rg -i -l 'w1\\|w2\\|w3' .agents`: median {} · p99 {} (agentops {x:.1}× faster) | p50 ≤ 15 ms at 100k, ≥ 10× faster than rg |",
            ms(ours.median()),
            ms(ours.pct(0.99)),
            ms(rg.median()),
            ms(rg.pct(0.99))
        );
        println!(
            "| `agentops context`, whole process, {n} entries (packet within 4,000 tokens, journaled) | median {} · p99 {} | – | p50 ≤ 25 ms at 100k |",
            ms(ctx.median()),
            ms(ctx.pct(0.99))
        );
        let size = dir_size(&repo.join(".agents"));
        let isize = dir_size(&repo.join(".git/agentops/index"));
        println!(
            "| corpus and index size, {n} entries | index {:.1} MB | `.agents/` {:.1} MB | – |",
            isize as f64 / 1e6,
            size as f64 / 1e6
        );
    }
}

fn dir_size(p: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}
