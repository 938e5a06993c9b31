//! Issue 3 figures: one memory write on a repository with 10,000 entries,
//! beside `git add <file> && git commit` of the same change; and 8 concurrent
//! writer processes × 50 writes. Measured on agentops' own layout (monthly
//! folders) and on one flat folder of 10,000 files.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agentops_knowledge::{Knowledge, NewEntry};
use agentops_store::RepoLayout;

use crate::corpus::Layout;
use crate::stats::{Samples, ms};

fn run_ok(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("spawn");
    let d = t.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    d
}

pub fn run(quick: bool) {
    let n_entries = if quick { 2_000 } else { 10_000 };
    println!(
        "## knowledge ({}, {n_entries} entries)",
        if quick { "quick" } else { "full" }
    );
    println!();
    println!("| measurement | agentops | baseline | target |");
    println!("|---|---|---|---|");
    let mut met = true;
    for layout in [Layout::Monthly, Layout::Flat] {
        met &= run_layout(quick, n_entries, layout);
    }
    println!();
    println!(
        "targets met (agentops layout): {}",
        if met { "yes" } else { "NO" }
    );
}

fn run_layout(quick: bool, n_entries: usize, layout: Layout) -> bool {
    let tmp = tempfile::tempdir().expect("tempdir");
    let samples = if quick { 15 } else { 40 };
    let bin = crate::agentops_bin();
    let repo = tmp.path().join("repo");
    crate::corpus::knowledge_repo(&repo, n_entries, &bin, layout);
    let label = match layout {
        Layout::Monthly => "monthly folders (agentops layout)",
        Layout::Flat => "one flat folder",
    };
    // The baseline writes into the folder agentops writes to for this layout.
    let folder = match layout {
        Layout::Monthly => {
            let c = agentops_core::time::civil_from_micros(agentops_core::time::now_micros());
            format!(".agents/learnings/{:04}-{:02}", c.year, c.month)
        }
        Layout::Flat => ".agents/learnings".to_owned(),
    };
    std::fs::create_dir_all(repo.join(&folder)).expect("mkdir");

    // Interleave ours and the baseline so both see the same repository size
    // and the same machine state.
    let mut ours = Vec::new();
    let mut baseline = Vec::new();
    for i in 0..samples {
        ours.push(run_ok(
            Command::new(&bin)
                .args([
                    "learn",
                    "-q",
                    &format!("bench memory write {i}"),
                    "--body",
                    "a body of a realistic length for a learning, with a few words",
                    "--tag",
                    "bench",
                ])
                .current_dir(&repo),
        ));
        let rel = format!("{folder}/manual-{i}.md");
        let t = Instant::now();
        std::fs::write(
            repo.join(&rel),
            format!("---\ntitle: manual {i}\n---\n\nbody\n"),
        )
        .expect("write");
        let write = t.elapsed();
        let add = run_ok(Command::new("git").args(["add", &rel]).current_dir(&repo));
        let commit = run_ok(
            Command::new("git")
                .args(["commit", "-q", "-m", &format!("manual {i}")])
                .current_dir(&repo),
        );
        baseline.push(write + add + commit);
    }
    let ours = Samples::new(ours);
    let baseline = Samples::new(baseline);

    // In-process: the library call alone (what a runner or MCP server pays).
    let layout_paths = RepoLayout::discover(&repo).expect("layout");
    let config =
        agentops_store::project::load_config(Some(&layout_paths), Vec::new()).expect("config");
    let k = Knowledge::new(layout_paths, config).expect("knowledge");
    let inproc = Samples::new(
        (0..samples)
            .map(|i| {
                let t = Instant::now();
                k.learn(
                    NewEntry {
                        title: format!("in-process write {i}"),
                        body: "body".into(),
                        ..NewEntry::default()
                    },
                    None,
                )
                .expect("learn");
                t.elapsed()
            })
            .collect(),
    );

    // 8 writer processes × 50 writes, all at once.
    let writers = 8;
    let per = if quick { 10 } else { 50 };
    let t = Instant::now();
    let children: Vec<_> = (0..writers)
        .map(|w| {
            Command::new("sh")
                .arg("-c")
                .arg(format!("for i in $(seq 1 {per}); do \"$0\" learn -q \"concurrent $1 $i\" --body x || exit 1; done"))
                .arg(&bin)
                .arg(w.to_string())
                .current_dir(&repo)
                .stdin(Stdio::null())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for mut c in children {
        assert!(c.wait().expect("wait").success());
    }
    let conc = t.elapsed();
    let total = writers * per;
    let fsck = Command::new("git")
        .args(["fsck", "--no-progress"])
        .current_dir(&repo)
        .output()
        .expect("fsck");

    let speedup = baseline.median().as_secs_f64() / ours.median().as_secs_f64();
    println!(
        "| one memory write, whole process (`agentops learn`), {n_entries} entries in {label} | median {} · p99 {} | `git add <file> && git commit`: median {} · p99 {} (agentops {speedup:.1}× faster) | ≤ 10 ms and ≥ 3× faster |",
        ms(ours.median()),
        ms(ours.pct(0.99)),
        ms(baseline.median()),
        ms(baseline.pct(0.99)),
    );
    println!(
        "| one memory write, in-process (`Knowledge::learn`), {label} | median {} · p99 {} | – | – |",
        ms(inproc.median()),
        ms(inproc.pct(0.99))
    );
    println!(
        "| {writers} writer processes × {per} writes at once, {label} | {:.0} writes/s ({total} writes in {:.2} s; git fsck {}) | – | report |",
        total as f64 / conc.as_secs_f64(),
        conc.as_secs_f64(),
        if fsck.status.success() {
            "clean"
        } else {
            "FAILED"
        }
    );
    layout == Layout::Flat || (ours.median() <= Duration::from_millis(10) && speedup >= 3.0)
}
