//! `init`, `doctor`, `version`, `completions` and the global flags, driven
//! through the real binary in temporary repositories.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use agentops_testkit::TestContext;
use insta::assert_snapshot;
use pretty_assertions::assert_eq;

fn ctx() -> TestContext {
    TestContext::new(env!("CARGO_BIN_EXE_agentops"))
}

/// A PATH holding only git and a fake `claude`, so the harness checks are the
/// same on every machine.
fn controlled_path(ctx: &TestContext) -> String {
    let bin = ctx.home.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let git = which("git");
    std::os::unix::fs::symlink(git, bin.join("git")).unwrap();
    let claude = bin.join("claude");
    std::fs::write(&claude, "#!/bin/sh\necho fake\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&claude, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin.display().to_string()
}

fn which(name: &str) -> std::path::PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap()
}

#[test]
fn version_text_and_json() {
    let ctx = ctx();
    let schema = agentops_store::SCHEMA_VERSION;
    let r = ctx.run(&["version"]);
    assert_eq!(
        r.ok(),
        format!(
            "agentops {} (journal schema {schema})\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    let r = ctx.run(&["version", "--json"]);
    let v: serde_json::Value = serde_json::from_str(r.ok()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"version": env!("CARGO_PKG_VERSION"), "journal_schema": schema})
    );
}

#[test]
fn init_creates_layout_then_changes_nothing() {
    let ctx = ctx();
    std::fs::write(ctx.path("staged.txt"), "mine\n").unwrap();
    ctx.git(&["add", "staged.txt"]);
    let r = ctx.run(&["init"]);
    let _g = ctx.insta_settings().bind_to_scope();
    assert_snapshot!("init_first", r.ok());
    for d in [
        "learnings",
        "decisions",
        "patterns",
        "handoffs",
        "runs",
        "agents",
        "workflows",
    ] {
        assert!(ctx.path(&format!(".agents/{d}/.gitkeep")).is_file(), "{d}");
    }
    assert!(ctx.git_dir().join("agentops/state.db").is_file());
    let cfg = std::fs::read_to_string(ctx.path(".agents/config.toml")).unwrap();
    assert_eq!(cfg, agentops_core::config::commented_template());
    // The user's staged change is untouched; init commits nothing.
    assert_eq!(
        ctx.git(&["status", "--porcelain"]),
        "A  staged.txt\n?? .agents/\n"
    );
    assert_eq!(ctx.git(&["rev-list", "--count", "HEAD"]), "1\n");

    // A second run rewrites nothing, not even a config the user edited.
    std::fs::write(
        ctx.path(".agents/config.toml"),
        "[memory]\ncommit = \"off\"\n",
    )
    .unwrap();
    let r = ctx.run(&["init"]);
    assert_snapshot!("init_again", r.ok());
    assert_eq!(
        std::fs::read_to_string(ctx.path(".agents/config.toml")).unwrap(),
        "[memory]\ncommit = \"off\"\n"
    );
}

#[test]
fn init_json_lists_steps() {
    let ctx = ctx();
    let r = ctx.run(&["init", "--json"]);
    let v: serde_json::Value = serde_json::from_str(r.ok()).unwrap();
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 10);
    assert!(steps.iter().all(|s| s["created"] == true));
    assert_eq!(steps[9]["path"], ".git/agentops/state.db");
}

#[test]
fn init_outside_a_repository_exits_2() {
    let ctx = TestContext::empty(env!("CARGO_BIN_EXE_agentops"));
    let r = ctx.run(&["init"]);
    assert_eq!(r.code, 2);
    assert_eq!(r.stdout, "");
    let _g = ctx.insta_settings().bind_to_scope();
    assert_snapshot!("init_outside_repo", r.stderr);
    assert!(!ctx.path(".agents").exists());
}

#[test]
fn init_in_a_linked_worktree_shares_the_store() {
    let ctx = ctx();
    ctx.run(&["init"]).ok();
    let wt = ctx.root.parent().unwrap().join("wt");
    ctx.git(&["worktree", "add", "-q", wt.to_str().unwrap()]);
    let r = ctx.run(&["-C", wt.to_str().unwrap(), "init", "--json"]);
    let v: serde_json::Value = serde_json::from_str(r.ok()).unwrap();
    let last = &v["steps"].as_array().unwrap()[9];
    assert_eq!(
        last["path"],
        ctx.git_dir()
            .join("agentops/state.db")
            .display()
            .to_string()
    );
    assert_eq!(last["created"], false);
}

#[test]
fn invalid_project_config_names_file_line_and_key() {
    let ctx = ctx();
    ctx.write(
        ".agents/config.toml",
        "[journal]\n\nsynchronous = \"sometimes\"\n",
    );
    let r = ctx.run(&["init"]);
    assert_eq!(r.code, 2, "{r:?}");
    let _g = ctx.insta_settings().bind_to_scope();
    assert_snapshot!("init_bad_config", r.stderr);
    assert!(!ctx.git_dir().join("agentops/state.db").exists());
}

#[test]
fn doctor_on_a_set_up_repository() {
    let ctx = ctx();
    ctx.run(&["init"]).ok();
    let path = controlled_path(&ctx);
    let r: agentops_testkit::Run = ctx
        .command(&["doctor"])
        .env("PATH", &path)
        .output()
        .unwrap()
        .into();
    let _g = ctx.insta_settings().bind_to_scope();
    assert_snapshot!("doctor_ok", r.ok());

    let r: agentops_testkit::Run = ctx
        .command(&["doctor", "-q"])
        .env("PATH", &path)
        .output()
        .unwrap()
        .into();
    assert_snapshot!("doctor_quiet", r.ok());

    let r: agentops_testkit::Run = ctx
        .command(&["doctor", "--json"])
        .env("PATH", &path)
        .output()
        .unwrap()
        .into();
    let v: serde_json::Value = serde_json::from_str(r.ok()).unwrap();
    assert_eq!(v["ok"], true);
    let statuses: Vec<(&str, &str)> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("git", "PASS"),
            ("repository", "PASS"),
            ("project", "PASS"),
            ("config", "PASS"),
            ("store", "PASS"),
            ("claude", "PASS"),
            ("codex", "WARN"),
            ("memory", "PASS"),
        ]
    );
}

#[test]
fn doctor_before_init_warns_with_the_fix() {
    let ctx = ctx();
    let r = ctx.run(&["doctor", "--json"]);
    let v: serde_json::Value = serde_json::from_str(r.ok()).unwrap();
    let store = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "store")
        .unwrap();
    assert_eq!(store["status"], "WARN");
    assert_eq!(store["fix"], "run `agentops init`");
    // doctor does not create the journal.
    assert!(!ctx.git_dir().join("agentops/state.db").exists());
}

#[test]
fn doctor_fails_on_bad_config_from_env() {
    let ctx = ctx();
    ctx.run(&["init"]).ok();
    let r: agentops_testkit::Run = ctx
        .command(&["doctor"])
        .env("AGENTOPS_MEMORY_COMMIT", "sometimes")
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("FAIL  config      AGENTOPS_MEMORY_COMMIT: key `memory.commit`: unknown variant `sometimes`"),
        "{}",
        r.stdout
    );
}

#[test]
fn doctor_reports_a_corrupt_journal_and_leaves_it() {
    let ctx = ctx();
    ctx.run(&["init"]).ok();
    let db = ctx.git_dir().join("agentops/state.db");
    std::fs::write(
        &db,
        "garbage that is not sqlite at all, truncated mid-write",
    )
    .unwrap();
    let before = std::fs::read(&db).unwrap();
    let r = ctx.run(&["doctor"]);
    assert_eq!(r.code, 1);
    let line = r.stdout.lines().find(|l| l.contains("store")).unwrap();
    assert!(line.starts_with("FAIL  store"), "{line}");
    assert!(line.contains("has not modified it"), "{line}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
    // init refuses too, and does not replace the file.
    let r = ctx.run(&["init"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains(&db.display().to_string()), "{}", r.stderr);
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

#[test]
fn doctor_outside_a_repository_fails_the_repository_check() {
    let ctx = TestContext::empty(env!("CARGO_BIN_EXE_agentops"));
    let r = ctx.run(&["doctor", "--json"]);
    assert_eq!(r.code, 1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["checks"][1]["name"], "repository");
    assert_eq!(v["checks"][1]["status"], "FAIL");
}

#[test]
fn dash_c_points_at_another_directory() {
    let ctx = ctx();
    let elsewhere = TestContext::empty(env!("CARGO_BIN_EXE_agentops"));
    let r: agentops_testkit::Run = elsewhere
        .command(&["-C", ctx.root.to_str().unwrap(), "init", "-q"])
        .output()
        .unwrap()
        .into();
    assert_eq!(r.ok(), "");
    assert!(ctx.path(".agents/config.toml").is_file());
    let r = ctx.run(&["-C", "/definitely/not/here", "version"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .starts_with("error: -C /definitely/not/here: cannot change to this directory"),
        "{}",
        r.stderr
    );
}

#[test]
fn usage_errors_exit_2() {
    let ctx = ctx();
    let r = ctx.run(&["frobnicate"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("unrecognized subcommand 'frobnicate'"),
        "{}",
        r.stderr
    );
    let r = ctx.run(&["completions", "powershell"]);
    assert_eq!(r.code, 2);
    let r = ctx.run(&["doctor", "-q", "-v"]);
    assert_eq!(r.code, 2);
}

#[test]
fn json_errors_are_json() {
    let ctx = TestContext::empty(env!("CARGO_BIN_EXE_agentops"));
    let r = ctx.run(&["init", "--json"]);
    assert_eq!(r.code, 2);
    let v: serde_json::Value = serde_json::from_str(&r.stderr).unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("not inside a git repository")
    );
}

#[test]
fn completions_for_each_shell() {
    let ctx = ctx();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef agentops"),
        ("fish", "complete -c agentops"),
    ] {
        let r = ctx.run(&["completions", shell]);
        let script = r.ok();
        assert!(script.contains(marker), "{shell}: {script}");
        for verb in ["init", "doctor", "version", "completions"] {
            assert!(script.contains(verb), "{shell} lacks {verb}");
        }
    }
    // The bash script is valid bash.
    let r = ctx.run(&["completions", "bash"]);
    // From a file: the script is longer than one argument may be.
    let file = ctx.path("completions.bash");
    std::fs::write(&file, &r.stdout).unwrap();
    let out = std::process::Command::new("bash")
        .arg("-n")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn help_is_a_manual() {
    let ctx = ctx();
    let r = ctx.run(&["--help"]);
    let _g = ctx.insta_settings().bind_to_scope();
    assert_snapshot!("help", r.ok());
}

#[test]
fn store_flag_beats_env_and_config() {
    let ctx = ctx();
    ctx.write(".agents/config.toml", "[store]\nurl = \"from-config.db\"\n");
    let r: agentops_testkit::Run = ctx
        .command(&["init", "--json", "--store", "from-flag.db"])
        .env("AGENTOPS_STORE_URL", "from-env.db")
        .output()
        .unwrap()
        .into();
    let v: serde_json::Value = serde_json::from_str(r.ok()).unwrap();
    assert_eq!(v["steps"][9]["path"], "from-flag.db");
    assert!(ctx.path("from-flag.db").is_file());
    let r: agentops_testkit::Run = ctx
        .command(&["init", "--json"])
        .env("AGENTOPS_STORE_URL", "from-env.db")
        .output()
        .unwrap()
        .into();
    let v: serde_json::Value = serde_json::from_str(r.ok()).unwrap();
    assert_eq!(v["steps"][9]["path"], "from-env.db");
    let v: serde_json::Value = serde_json::from_str(ctx.run(&["init", "--json"]).ok()).unwrap();
    assert_eq!(v["steps"][9]["path"], "from-config.db");
    let r = ctx.run(&["doctor", "--store", "postgres://app:pw@db/x"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout
            .contains("FAIL  config      --store: key `store.url`: has a password in it"),
        "{}",
        r.stdout
    );
}

/// A journal written by the release before the typed protocol reads as it
/// did: every view prints what that release printed (see
/// testkit/fixtures/journal-v0.1/README.md).
#[test]
fn old_journal_reads_the_same() {
    let ctx = ctx();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testkit/fixtures/journal-v0.1");
    let state = ctx.git_dir().join("agentops");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::copy(fixture.join("state.db"), state.join("state.db")).unwrap();
    let commands = std::fs::read_to_string(fixture.join("commands.txt")).unwrap();
    let root = ctx.root.display().to_string();
    for line in commands.lines() {
        let (n, cmd) = line.split_once(' ').unwrap();
        let args: Vec<&str> = cmd.split(' ').collect();
        let out = ctx.command(&args).env_remove("COLUMNS").output().unwrap();
        let mut got = String::from_utf8_lossy(&out.stdout).into_owned();
        got.push_str(&String::from_utf8_lossy(&out.stderr));
        let got = got.replace(&root, "[REPO]");
        let want = std::fs::read_to_string(fixture.join(format!("expected/{n}.txt"))).unwrap();
        assert_eq!(got, want, "`agentops {cmd}`");
    }
}
