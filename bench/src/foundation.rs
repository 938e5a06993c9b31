//! Issue 2 figures: journal append throughput (batched; one durable event per
//! transaction) and whole-process time of `agentops version` / `doctor` beside
//! `git --version`.

use std::process::Command;
use std::time::{Duration, Instant};

use agentops_core::config::Synchronous;
use agentops_core::{EventKind, NewEvent, RunId, SpanId};
use agentops_store::{Durability, Journal, OpenOptions, SqliteStore};

use crate::stats::{Samples, ms, time_process};

/// A tool-call event as a hook records it: about 400 bytes of JSON.
fn event(run: &RunId, i: usize) -> NewEvent {
    NewEvent::now(
        run.clone(),
        EventKind::ToolCall,
        serde_json::json!({
            "tool": "Bash",
            "input": {"command": format!("cargo test -p agentops-store --test sqlite -- case_{i}"), "description": "Run the store tests"},
            "duration_ms": 1234,
            "ok": true,
            "cwd": "/home/dev/projects/agentops",
            "output_tail": "test result: ok. 10 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.36s",
        }),
    )
    .in_span(SpanId::generate(), None)
}

fn journal(dir: &std::path::Path, name: &str, sync: Synchronous) -> Journal {
    let store = SqliteStore::open(
        &dir.join(name),
        OpenOptions {
            create: true,
            busy_timeout_ms: 10_000,
            synchronous: sync,
            read_only: false,
        },
    )
    .expect("open");
    Journal::new(Box::new(store), &[]).expect("journal")
}

pub fn run(quick: bool) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let run_id = RunId::generate();
    let (batched_total, singles, procs) = if quick {
        (20_000, 300, 30)
    } else {
        (200_000, 2_000, 200)
    };

    // Batched: 1,000 events per transaction, synchronous = FULL.
    let j = journal(dir, "batched.db", Synchronous::Full);
    let t = Instant::now();
    for chunk in 0..batched_total / 1000 {
        let batch: Vec<NewEvent> = (0..1000)
            .map(|i| event(&run_id, chunk * 1000 + i))
            .collect();
        j.append_batch(batch, Durability::Sync).expect("append");
    }
    let batched_rate = batched_total as f64 / t.elapsed().as_secs_f64();

    // One durable event per transaction (FULL: the WAL is fsynced per commit).
    let j = journal(dir, "single-full.db", Synchronous::Full);
    let full = Samples::new(
        (0..singles)
            .map(|i| {
                let e = event(&run_id, i);
                let t = Instant::now();
                j.append(e, Durability::Sync).expect("append");
                t.elapsed()
            })
            .collect(),
    );
    // The same with synchronous = NORMAL, for comparison.
    let j = journal(dir, "single-normal.db", Synchronous::Normal);
    let normal = Samples::new(
        (0..singles)
            .map(|i| {
                let e = event(&run_id, i);
                let t = Instant::now();
                j.append(e, Durability::Configured).expect("append");
                t.elapsed()
            })
            .collect(),
    );

    // Whole-process times in an initialised repository.
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).expect("mkdir");
    let ok = Command::new("git")
        .args(["init", "-q", "-b", "main"])
        .current_dir(&repo)
        .status()
        .expect("git");
    assert!(ok.success());
    let bin = crate::agentops_bin();
    let bin_s = bin.to_str().expect("utf-8 path");
    let ok = Command::new(bin_s)
        .arg("init")
        .current_dir(&repo)
        .output()
        .expect("init");
    assert!(ok.status.success());
    let git_v = time_process(&["git", "--version"], &repo, procs);
    let version = time_process(&[bin_s, "version"], &repo, procs);
    let doctor = time_process(&[bin_s, "doctor"], &repo, procs / 4);

    println!("## foundation ({})", if quick { "quick" } else { "full" });
    println!();
    println!("| measurement | agentops | baseline | target |");
    println!("|---|---|---|---|");
    println!(
        "| journal append, batched 1,000/tx, synchronous=FULL, redacted | {batched_rate:.0} events/s ({batched_total} events) | – | ≥ 50,000 events/s |"
    );
    println!(
        "| journal append, 1 event/tx, synchronous=FULL (fsync per commit) | median {} · p99 {} | synchronous=NORMAL: median {} · p99 {} | median ≤ 1 ms |",
        ms(full.median()),
        ms(full.pct(0.99)),
        ms(normal.median()),
        ms(normal.pct(0.99))
    );
    println!(
        "| `agentops version`, whole process | median {} · p99 {} | `git --version`: median {} · p99 {} | median ≤ 5 ms |",
        ms(version.median()),
        ms(version.pct(0.99)),
        ms(git_v.median()),
        ms(git_v.pct(0.99))
    );
    println!(
        "| `agentops doctor`, whole process (spawns git, integrity check) | median {} · p99 {} | `git --version`: median {} | – |",
        ms(doctor.median()),
        ms(doctor.pct(0.99)),
        ms(git_v.median())
    );
    let pass = batched_rate >= 50_000.0
        && full.median() <= Duration::from_millis(1)
        && version.median() <= Duration::from_millis(5);
    println!();
    println!("targets met: {}", if pass { "yes" } else { "NO" });
}
