//! Factor IV through the real binary: `gate run` for CI, and the hook policy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use agentops_testkit::TestContext;
use pretty_assertions::assert_eq;

const GATES: &str = r#"
[gates.tests]
kind = "command"
command = "test -f src/lib.rs"
description = "the library exists"

[gates.scope]
kind = "scope"
allow = ["src/**", ".agents/**"]

[gates.size]
kind = "diff"
max_files = 10
warn_lines = 2

[gates.secrets]
kind = "secrets"
"#;

fn ctx() -> TestContext {
    let ctx = TestContext::new(env!("CARGO_BIN_EXE_agentops"));
    ctx.run(&["init", "-q"]).ok();
    ctx.write(".agents/gates.toml", GATES);
    ctx.git(&["add", "-A"]);
    ctx.git(&["commit", "-qm", "gates"]);
    ctx
}

#[test]
fn gate_run_exit_codes_json_and_strict() {
    let ctx = ctx();
    ctx.write("src/lib.rs", "fn f() {}\n");
    let r = ctx.run(&["gate", "run", "tests", "scope", "secrets"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.ends_with("3 gates: all passed\n"), "{}", r.stdout);
    // Three lines trip the WARN of `size`; --strict makes it block.
    ctx.write("src/lib.rs", "fn f() {}\nfn g() {}\nfn h() {}\n");
    let r = ctx.run(&["gate", "run", "size"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with("WARN  size"), "{}", r.stdout);
    assert_eq!(ctx.run(&["gate", "run", "size", "--strict"]).code, 1);
    // A secret and a file out of scope: FAIL, exit 1, evidence without the value.
    let token = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB";
    ctx.write("src/lib.rs", &format!("const T: &str = \"{token}\";\n"));
    ctx.write("notes.txt", "x\n");
    let r = ctx.run(&["gate", "run", "--all", "--json"]);
    assert_eq!(r.code, 1);
    assert!(!r.stdout.contains(token));
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let verdicts: Vec<(String, String)> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["name"].as_str().unwrap().to_owned(),
                x["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        vec![
            ("scope".into(), "FAIL".into()),
            ("secrets".into(), "FAIL".into()),
            ("size".into(), "PASS".into()),
            ("tests".into(), "PASS".into()),
        ]
    );
    // Against an explicit base: the commit that added the gates has no changes of its own.
    let head = ctx.git(&["rev-parse", "HEAD"]);
    let r = ctx.run(&["gate", "run", "size", "--base", head.trim(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["results"][0]["evidence"]["files"], 2);
}

#[test]
fn verdicts_are_journaled() {
    let ctx = ctx();
    ctx.write("src/lib.rs", "fn f() {}\n");
    ctx.run(&["gate", "run", "tests", "--session", "s-1"]).ok();
    let store = agentops_store::SqliteStore::open(
        &ctx.git_dir().join("agentops/state.db"),
        agentops_store::sqlite_open_options(false),
    )
    .unwrap();
    use agentops_store::EventLog;
    let ev = store
        .read(&agentops_store::Query {
            kinds: vec![agentops_core::EventKind::GateVerdict],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].run_id.as_str(), "s-1");
    assert_eq!(ev[0].body["gate"], "tests");
    assert_eq!(ev[0].body["verdict"], "PASS");
    assert!(ev[0].span_id.is_some());
}

#[test]
fn configuration_errors_exit_2_with_file_line_key() {
    let ctx = ctx();
    ctx.write(".agents/gates.toml", "[gates.t]\nkind = \"command\"\n\n[gates.s]\nkind = \"scope\"\nallow = [\"src/**\"]\nmax_line = 3\n");
    let r = ctx.run(&["gate", "run", "--all"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains(".agents/gates.toml:7: unknown field `max_line`"),
        "{}",
        r.stderr
    );
    ctx.write(".agents/gates.toml", GATES);
    let r = ctx.run(&["gate", "run", "nope"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("no gate named `nope`; defined: scope, secrets, size, tests"),
        "{}",
        r.stderr
    );
    assert_eq!(ctx.run(&["gate", "run"]).code, 2);
    let listed = ctx.run(&["gate", "list"]);
    assert!(
        listed
            .ok()
            .contains("tests            command  the library exists"),
        "{}",
        listed.stdout
    );
}

fn fixture(name: &str) -> serde_json::Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testkit/fixtures/claude-code/hooks")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn hook_fixtures_through_the_policy() {
    let ctx = ctx();
    let dangerous = fixture("pre-tool-use-bash-dangerous.json");
    let cmd = dangerous["tool_input"]["command"].as_str().unwrap();
    let r = ctx.run(&["gate", "check", "command", cmd, "--json"]);
    assert_eq!(r.code, 1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["rule"], "force-push");
    let benign = fixture("pre-tool-use-bash-benign.json");
    let r = ctx.run(&[
        "gate",
        "check",
        "command",
        benign["tool_input"]["command"].as_str().unwrap(),
    ]);
    assert_eq!(r.ok(), "allow\n");
    // The fixture writes to <project>/../other-repo/.env: outside, whatever the project.
    let out = fixture("pre-tool-use-write-out-of-scope.json");
    let path = out["tool_input"]["file_path"]
        .as_str()
        .unwrap()
        .replace("/home/dev/shop", ctx.root.to_str().unwrap());
    let r = ctx.run(&["gate", "check", "write", &path, "--json"]);
    assert_eq!(r.code, 1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["rule"], "outside-project");
}

#[test]
fn policy_configuration_is_honoured() {
    let ctx = ctx();
    std::fs::write(
        ctx.path(".agents/config.toml"),
        "[policy]\ndeny_commands = [\"\\\\bterraform\\\\s+destroy\\\\b\"]\nallow_commands = [\"^git push --force origin scratch$\"]\nwrite_scope = [\"src/**\"]\n",
    )
    .unwrap();
    assert_eq!(
        ctx.run(&[
            "gate",
            "check",
            "command",
            "terraform destroy -auto-approve"
        ])
        .code,
        1
    );
    assert_eq!(
        ctx.run(&[
            "gate",
            "check",
            "command",
            "git push --force origin scratch"
        ])
        .code,
        0
    );
    assert_eq!(
        ctx.run(&["gate", "check", "command", "git push --force origin main"])
            .code,
        1
    );
    assert_eq!(ctx.run(&["gate", "check", "write", "src/new.rs"]).code, 0);
    let r = ctx.run(&["gate", "check", "write", "README.md"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("outside this agent's write scope"),
        "{}",
        r.stdout
    );
    std::fs::write(
        ctx.path(".agents/config.toml"),
        "[policy]\n\ndeny_commands = [\"(\"]\n",
    )
    .unwrap();
    let r = ctx.run(&["gate", "check", "command", "ls"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains(".agents/config.toml:3: key `policy.deny_commands`"),
        "{}",
        r.stderr
    );
}

#[test]
fn approval_waits_for_a_person_then_passes_or_fails() {
    let ctx = ctx();
    std::fs::write(
        ctx.path(".agents/gates.toml"),
        format!(
            "{GATES}\n[gates.deploy]\nkind = \"approval\"\ndescription = \"ship to production\"\n"
        ),
    )
    .unwrap();
    // Nothing decided yet: the run waits (exit 3) and says how to decide.
    let r = ctx.run(&["gate", "run", "deploy", "--session", "s-7"]);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("WAIT  deploy  approval requested (ship to production): agentops approve s-7 --gate deploy"), "{}", r.stdout);
    let pending: serde_json::Value =
        serde_json::from_str(ctx.run(&["gate", "pending", "--json"]).ok()).unwrap();
    assert_eq!(pending[0]["run"], "s-7");
    assert_eq!(pending[0]["gate"], "deploy");
    // Asking again does not pile up requests.
    assert_eq!(
        ctx.run(&["gate", "run", "deploy", "--session", "s-7"]).code,
        3
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(ctx.run(&["gate", "pending", "--json"]).ok())
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // A person approves from another process; the gate passes.
    let r: agentops_testkit::Run = ctx
        .command(&[
            "approve",
            "s-7",
            "--gate",
            "deploy",
            "--reason",
            "checked the canary",
        ])
        .env("USER", "alice")
        .output()
        .unwrap()
        .into();
    assert_eq!(r.ok(), "approved in s-7: deploy\n");
    let r = ctx.run(&["gate", "run", "deploy", "--session", "s-7", "--json"]);
    assert_eq!(r.code, 0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        v["results"][0]["summary"],
        "approved by alice: checked the canary"
    );
    // Another session is asked separately, and a rejection fails the gate.
    assert_eq!(
        ctx.run(&["gate", "run", "deploy", "--session", "s-8"]).code,
        3
    );
    ctx.run(&["reject", "s-8", "--reason", "not during the freeze"])
        .ok();
    let r = ctx.run(&["gate", "run", "deploy", "--session", "s-8"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("rejected by"), "{}", r.stdout);
    // Nothing left to decide.
    let r = ctx.run(&["approve", "s-8"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("nothing is waiting for approval in s-8"),
        "{}",
        r.stderr
    );
    assert_eq!(ctx.run(&["gate", "pending"]).ok(), "no approvals waiting\n");
}
