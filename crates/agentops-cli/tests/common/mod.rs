//! Helpers shared by the CLI tests that run workflows on the demo project.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use agentops_runner::demo;
use agentops_testkit::TestContext;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_agentops");
pub const GOAL: &str = "greet.sh must greet as 'Hello, NAME!' and refuse an empty name";

/// A repository holding the demo project (three agents, the `feature`
/// workflow, a test gate and a scope gate), committed; with `learnings`,
/// also the demo's three learnings, indexed.
pub fn demo_project(learnings: bool) -> TestContext {
    let ctx = TestContext::new(BIN);
    for (path, text) in demo::FILES {
        ctx.write(path, text);
    }
    ctx.run(&["init"]).ok();
    let cfg = ctx.path(".agents/config.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(demo::GATES);
    std::fs::write(&cfg, text).unwrap();
    if learnings {
        for (title, body, tags) in demo::LEARNINGS {
            let mut args = vec!["learn", title, "--body", body];
            for t in *tags {
                args.extend(["--tag", t]);
            }
            ctx.run(&args).ok();
        }
    }
    ctx.git(&["add", "-A"]);
    ctx.git(&["commit", "-q", "-m", "project"]);
    if learnings {
        ctx.run(&["index"]).ok();
    }
    ctx
}

/// The newest run's id.
pub fn run_id(ctx: &TestContext) -> String {
    let v: Value = serde_json::from_str(ctx.run(&["runs", "--json"]).ok()).unwrap();
    v[0]["id"].as_str().unwrap().to_owned()
}

/// A xorshift generator from `seed`: the instants of kill -9 tests
/// (reproducible from the seed).
pub fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}
