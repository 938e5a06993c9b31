//! `agentops-bench <suite>`: measures agentops beside the tool a user would
//! otherwise reach for, in the same run, and prints a Markdown table.
//! Run through `bench/run <suite>`, which builds release binaries first.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used
)]

mod context;
mod corpus;
mod flywheel;
mod foundation;
mod gates;
mod harness;
mod knowledge;
mod mcp;
mod retrieval;
mod runner;
mod stats;
mod team;
mod team_workers;
mod telemetry;
mod ui;

use std::path::PathBuf;

fn usage() -> ! {
    eprintln!(
        "usage: agentops-bench <suite> [--quick]\nsuites: foundation, knowledge, context, retrieval, mcp, ui, gates, harness, flywheel, runner, telemetry, team\n       agentops-bench trace-repo DIR   (a repo with a 10,101-span run, for profiling)\n       agentops-bench knowledge-repo DIR N   (a repo with N committed learnings, for profiling)"
    );
    std::process::exit(2)
}

/// The release `agentops` binary beside this one.
pub fn agentops_bin() -> PathBuf {
    let me = std::env::current_exe().expect("current exe");
    let p = me.with_file_name("agentops");
    if !p.is_file() {
        eprintln!("{} not found: build it first (bench/run does)", p.display());
        std::process::exit(2);
    }
    p
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    match args.first().map(String::as_str) {
        Some("foundation") => foundation::run(quick),
        Some("knowledge") => knowledge::run(quick),
        Some("context") => context::run(quick),
        Some("gates") => gates::run(quick),
        Some("harness") => harness::run(quick),
        Some("flywheel") => flywheel::run(quick),
        Some("retrieval") => retrieval::run(quick),
        Some("mcp") => mcp::run(quick),
        Some("runner") => runner::run(quick),
        Some("telemetry") => telemetry::run(quick),
        Some("ui") => ui::run(quick),
        Some("team") => team::run(quick),
        Some("knowledge-repo") => match (args.get(1), args.get(2).and_then(|n| n.parse().ok())) {
            (Some(dir), Some(n)) => corpus::knowledge_repo(
                std::path::Path::new(dir),
                n,
                &agentops_bin(),
                corpus::Layout::Monthly,
            ),
            _ => usage(),
        },
        Some("trace-repo") => match args.get(1) {
            Some(dir) => drop(telemetry::trace_repo(std::path::Path::new(dir))),
            None => usage(),
        },
        _ => usage(),
    }
}
