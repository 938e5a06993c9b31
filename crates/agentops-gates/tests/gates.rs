//! Gates against real git repositories and real commands.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use agentops_core::RunId;
use agentops_gates::{
    Gate, GateResult, Next, Verdict, escalation, feedback_message, load, run_gates,
};
use pretty_assertions::assert_eq;

fn git(dir: &Path, args: &[&str]) {
    let o = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

struct Repo {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Repo {
    fn new(gates: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap().join("r");
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir_all(root.join(".agents")).unwrap();
        std::fs::write(root.join(".agents/gates.toml"), gates).unwrap();
        std::fs::write(root.join("src/a.rs"), "fn a() {}\n").unwrap();
        std::fs::write(root.join("src/b.rs"), "fn b() {}\n").unwrap();
        std::fs::write(root.join("README.md"), "# r\n").unwrap();
        git(&root, &["init", "-q", "-b", "main"]);
        git(&root, &["add", "."]);
        git(&root, &["commit", "-q", "-m", "base"]);
        Self { _tmp: tmp, root }
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn run(&self, names: &[&str]) -> Vec<GateResult> {
        let gates = load(&self.root.join(".agents")).unwrap();
        let sel: Vec<&Gate> = names.iter().map(|n| &gates[*n]).collect();
        run_gates(&sel, &self.root, None, None, &RunId::parse("t").unwrap()).unwrap()
    }
}

const GATES: &str = r#"
[gates.scope]
kind = "scope"
allow = ["src/**", "docs/**"]
deny = ["src/generated/**"]

[gates.size]
kind = "diff"
max_files = 3
max_lines = 50
warn_lines = 10

[gates.secrets]
kind = "secrets"
deny = ["tests/fixtures/**"]

[gates.ok]
kind = "command"
command = "echo all good"

[gates.failing]
kind = "command"
command = ["sh", "-c", "echo line one; echo oops >&2; exit 3"]

[gates.slow]
kind = "command"
command = "sleep 30 & sleep 30; echo never"
timeout_s = 1

[gates.noisy]
kind = "command"
command = "seq 1 100000; echo 'export API_TOKEN=hunter2hunter2' ; exit 1"
"#;

#[test]
fn scope_sees_renames_deletions_untracked_and_symlinks() {
    let r = Repo::new(GATES);
    assert_eq!(
        r.run(&["scope"])[0].verdict,
        Verdict::Pass,
        "no changes pass"
    );
    git(&r.root, &["mv", "src/a.rs", "src/c.rs"]);
    std::fs::remove_file(r.root.join("src/b.rs")).unwrap();
    r.write("docs/new.md", "new\n");
    let res = &r.run(&["scope"])[0];
    assert_eq!(res.verdict, Verdict::Pass, "{res:?}");
    // A rename out of scope, a write outside, a denied path, a symlink out.
    git(&r.root, &["mv", "src/c.rs", "lib.rs"]);
    r.write("src/generated/x.rs", "x\n");
    std::os::unix::fs::symlink("/etc/passwd", r.root.join("src/passwd")).unwrap();
    let res = &r.run(&["scope"])[0];
    assert_eq!(res.verdict, Verdict::Fail);
    let mut offending: Vec<String> = res.evidence["offending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{} ({})",
                o["path"].as_str().unwrap(),
                o["reason"].as_str().unwrap()
            )
        })
        .collect();
    offending.sort();
    assert_eq!(
        offending,
        vec![
            "lib.rs (outside the allowed globs)".to_owned(),
            "src/generated/x.rs (matches a denied glob)".to_owned(),
            "src/passwd (symlink pointing outside the repository (/etc/passwd))".to_owned(),
        ]
    );
}

#[test]
fn diff_counts_files_and_lines_including_binaries() {
    let r = Repo::new(GATES);
    r.write("src/a.rs", &"x\n".repeat(8));
    let res = &r.run(&["size"])[0];
    assert_eq!(
        (res.verdict, res.evidence["lines"].as_u64()),
        (Verdict::Pass, Some(9))
    );
    r.write("src/b.rs", &"y\n".repeat(5));
    assert_eq!(r.run(&["size"])[0].verdict, Verdict::Warn);
    std::fs::write(r.root.join("src/blob.bin"), [0u8, 1, 2, 0, 255]).unwrap();
    r.write("docs/x.md", "x\n");
    let res = &r.run(&["size"])[0];
    assert_eq!(res.verdict, Verdict::Fail, "{res:?}");
    assert_eq!(res.evidence["files"], 4);
    assert_eq!(res.evidence["binary_files"], 1);
}

#[test]
fn secrets_report_rule_and_line_never_the_value() {
    let r = Repo::new(GATES);
    let token = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB";
    r.write(
        "src/a.rs",
        &format!("fn a() {{}}\nconst T: &str = \"{token}\";\n"),
    );
    r.write(
        "src/key.pem",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIE\nAAAA\n-----END RSA PRIVATE KEY-----\n",
    );
    r.write("tests/fixtures/fake.env", &format!("TOKEN={token}\n"));
    let res = &r.run(&["secrets"])[0];
    assert_eq!(res.verdict, Verdict::Fail);
    let at: Vec<String> = res.evidence["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                f["at"].as_str().unwrap(),
                f["rule"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        at,
        vec![
            "src/a.rs:2 github-token".to_owned(),
            "src/key.pem:1 private-key".to_owned()
        ]
    );
    assert!(!res.evidence.to_string().contains(token));
}

#[test]
fn commands_pass_fail_time_out_and_cap_output() {
    let r = Repo::new(GATES);
    let res = r.run(&["ok", "failing", "slow", "noisy"]);
    assert_eq!(res[0].verdict, Verdict::Pass);
    assert_eq!(res[0].evidence["tail"], "all good");
    assert_eq!(res[1].verdict, Verdict::Fail);
    assert_eq!(res[1].evidence["exit_code"], 3);
    let tail = res[1].evidence["tail"].as_str().unwrap();
    assert!(tail.contains("line one") && tail.contains("oops"), "{tail}");
    assert_eq!(res[2].verdict, Verdict::Fail);
    assert_eq!(res[2].evidence["timed_out"], true);
    assert!(
        res[2].duration_ms < 5_000.0,
        "the timeout did not kill the group: {}",
        res[2].duration_ms
    );
    let noisy = &res[3].evidence;
    assert_eq!(noisy["output_lines"], 100_001);
    assert_eq!(noisy["tail"].as_str().unwrap().lines().count(), 200);
    assert_eq!(noisy["tail_truncated"], true);
    assert!(
        noisy["tail"]
            .as_str()
            .unwrap()
            .ends_with("export API_TOKEN=[REDACTED:sensitive-assignment]")
    );
}

#[test]
fn retry_feedback_is_bounded_then_escalates() {
    let r = Repo::new(GATES);
    r.write("lib.rs", "outside\n");
    let res = r.run(&["scope", "noisy", "ok"]);
    let words = |s: &str| s.split_whitespace().count();
    let msg = feedback_message(&res, 1_000, &words);
    assert!(words(&msg) <= 1_000);
    assert!(
        msg.contains("Gate `scope` (Scope) FAILED")
            && msg.contains("- lib.rs: outside the allowed globs"),
        "{msg}"
    );
    assert!(!msg.contains("all good"), "passing gates are not feedback");
    let small = feedback_message(&res, 40, &words);
    assert!(words(&small) <= 40, "{small}");
    assert!(small.contains("[feedback cut to fit its token budget]"));
    assert!(matches!(
        escalation(&res, 1, 3, 1000, &words),
        Next::Retry { .. }
    ));
    assert!(matches!(
        escalation(&res, 3, 3, 1000, &words),
        Next::Escalate { .. }
    ));
    let ok = r.run(&["ok"]);
    assert_eq!(escalation(&ok, 3, 3, 1000, &words), Next::Proceed);
}
