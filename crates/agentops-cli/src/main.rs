//! `agentops`: operational discipline for AI agents. This binary parses
//! arguments, calls one library function per command, and renders the result
//! as text or JSON. Exit codes: 0 success, 1 a failure the command reports,
//! 2 usage or configuration error, 3 paused waiting for a person.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cli;
mod commands;
mod output;
mod shared;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // The hook runs on every tool call of someone else's agent: its exact
    // installed form skips building the whole command tree (a measurable
    // share of a 3 ms budget). `agentops hook --help` still goes through clap.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if argv.len() == 2
        && argv[0] == "hook"
        && let Some(h) = argv[1]
            .to_str()
            .filter(|h| matches!(*h, "claude" | "codex"))
    {
        return ExitCode::from(commands::hook_fast(h) as u8);
    }
    let args = cli::Cli::parse();
    let out = output::Output::new(args.global.json, args.global.quiet, args.global.verbose);
    if let Some(dir) = &args.global.directory
        && let Err(e) = std::env::set_current_dir(dir)
    {
        out.error(&format!(
            "-C {}: cannot change to this directory: {e}",
            dir.display()
        ));
        return ExitCode::from(2);
    }
    match commands::run(args.command, &args.global.overrides(), &out) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            out.error(&e.message);
            ExitCode::from(e.code as u8)
        }
    }
}
