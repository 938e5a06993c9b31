//! Issue 5 figure: `agentops gate run scope diff secrets` on a 1,000-file
//! diff, whole process, beside `git diff --numstat` of the same diff.

use std::process::Command;

use crate::corpus::{Rng, git};
use crate::stats::{ms, time_process};

pub fn run(quick: bool) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join("src")).expect("mkdir");
    git(&repo, &["init", "-q", "-b", "main"]);
    let bin = crate::agentops_bin();
    let st = Command::new(&bin)
        .args(["init", "-q"])
        .current_dir(&repo)
        .status()
        .expect("init");
    assert!(st.success());
    std::fs::write(
        repo.join(".agents/gates.toml"),
        "[gates.scope]\nkind = \"scope\"\nallow = [\"src/**\", \".agents/**\"]\n\n[gates.diff]\nkind = \"diff\"\nmax_files = 2000\nmax_lines = 100000\n\n[gates.secrets]\nkind = \"secrets\"\n",
    )
    .expect("gates");
    // 1,000 source files of ~60 lines, committed; then each one edited:
    // 5 lines changed and 5 added.
    let mut rng = Rng::new(11);
    let n = 1000;
    for i in 0..n {
        let mut text = String::new();
        for l in 0..60 {
            text.push_str(&format!("fn f{i}_{l}() {{ /* {} */ }}\n", rng.words(6)));
        }
        let dir = repo.join(format!("src/m{:02}", i % 50));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join(format!("f{i}.rs")), text).expect("write");
    }
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "base"]);
    for i in 0..n {
        let p = repo.join(format!("src/m{:02}/f{i}.rs", i % 50));
        let old = std::fs::read_to_string(&p).expect("read");
        let mut lines: Vec<String> = old.lines().map(str::to_owned).collect();
        for k in 0..5 {
            lines[k * 10] = format!("fn changed_{i}_{k}() {{ let retries = {k}; }}");
        }
        for k in 0..5 {
            lines.push(format!("fn added_{i}_{k}() {{ /* {} */ }}", rng.words(5)));
        }
        std::fs::write(&p, lines.join("\n") + "\n").expect("write");
    }
    // Let the kernel write the 1,000 edited files back before timing, so the
    // measurement is of the gates, not of writeback competing with them.
    let _ = Command::new("sync").status();
    let runs = if quick { 5 } else { 20 };
    let ours = time_process(
        &[
            bin.to_str().expect("utf-8"),
            "gate",
            "run",
            "scope",
            "diff",
            "secrets",
            "-q",
        ],
        &repo,
        runs,
    );
    let base = time_process(&["git", "diff", "--numstat", "HEAD"], &repo, runs);
    println!("## gates ({})", if quick { "quick" } else { "full" });
    println!();
    println!("| measurement | agentops | baseline | target |");
    println!("|---|---|---|---|");
    println!(
        "| `agentops gate run scope diff secrets`, whole process, 1,000 changed files (10,000 changed lines) | median {} · p99 {} | `git diff --numstat HEAD`: median {} · p99 {} | ≤ 200 ms |",
        ms(ours.median()),
        ms(ours.pct(0.99)),
        ms(base.median()),
        ms(base.pct(0.99))
    );
    println!();
    println!(
        "targets met: {}",
        if ours.median().as_millis() <= 200 {
            "yes"
        } else {
            "NO"
        }
    );
}
