//! Test support: a [`TestContext`] makes a temporary git repository with an
//! isolated home and configuration, runs the real `agentops` binary in it, and
//! filters volatile text (paths, ids, times) out of output for snapshots.

#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The scripted model server (OpenAI and Anthropic wire formats, plain and
/// SSE, answering from a script keyed by turn, recording every request).
pub use agentops_llm::scripted as model;

pub mod otlp_receiver;
pub mod pg;
pub mod store_conformance;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary git repository, an isolated `$HOME`, and the binary under test.
pub struct TestContext {
    _tmp: tempfile::TempDir,
    /// The repository's work tree.
    pub root: PathBuf,
    /// `$HOME` and `$XDG_CONFIG_HOME` for the commands run here.
    pub home: PathBuf,
    bin: PathBuf,
}

/// What a command printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "exit {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        &self.stdout
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl TestContext {
    /// A fresh repository on branch `main` with one commit. `bin` is the binary
    /// under test: `env!("CARGO_BIN_EXE_agentops")` in the CLI's tests.
    pub fn new(bin: &str) -> Self {
        let ctx = Self::empty(bin);
        ctx.git(&["init", "-q", "-b", "main"]);
        std::fs::write(ctx.root.join("README.md"), "# test repo\n").unwrap();
        ctx.git(&["add", "README.md"]);
        ctx.git(&["commit", "-q", "-m", "initial"]);
        ctx
    }

    /// A temporary directory that is not a git repository.
    pub fn empty(bin: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let root = base.join("repo");
        let home = base.join("home");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(home.join(".config")).unwrap();
        Self {
            _tmp: tmp,
            root,
            home,
            bin: PathBuf::from(bin),
        }
    }

    fn isolate(&self, cmd: &mut Command) {
        for (k, _) in std::env::vars() {
            if k.starts_with("AGENTOPS_")
                || k.starts_with("GIT_")
                || k.starts_with("OTEL_")
                || k == "XDG_CONFIG_HOME"
            {
                cmd.env_remove(k);
            }
        }
        cmd.current_dir(&self.root)
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Test Author")
            .env("GIT_AUTHOR_EMAIL", "author@example.com")
            .env("GIT_COMMITTER_NAME", "Test Author")
            .env("GIT_COMMITTER_EMAIL", "author@example.com")
            .env("NO_COLOR", "1");
    }

    /// The binary under test as a command, in the repository, isolated.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        self.isolate(&mut cmd);
        cmd.args(args);
        cmd
    }

    /// Runs the binary with `args` and collects its output.
    pub fn run(&self, args: &[&str]) -> Run {
        self.command(args).output().unwrap().into()
    }

    /// Runs the binary with `args` and extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, String)]) -> Run {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap().into()
    }

    /// Runs the binary with `args`, feeding `input` on stdin.
    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(mut stdin) = child.stdin.take() {
            // The process may stop reading early (oversized input): ignore EPIPE.
            let _ = stdin.write_all(input);
        }
        child.wait_with_output().unwrap().into()
    }

    /// Runs `git` in the repository; panics if it fails.
    #[track_caller]
    pub fn git(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("git");
        self.isolate(&mut cmd);
        let o = cmd.args(args).output().unwrap();
        assert!(
            o.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Runs `git` in the repository and returns what happened, failure included.
    pub fn git_run(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new("git");
        self.isolate(&mut cmd);
        cmd.args(args).output().unwrap().into()
    }

    /// `sh -c script` in the repository with the same isolation as
    /// [`Self::command`]; `$0` is the binary under test, then `args`.
    pub fn shell(&self, script: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("sh");
        self.isolate(&mut cmd);
        cmd.arg("-c").arg(script).arg(&self.bin).args(args);
        cmd
    }

    /// [`Self::shell`] in a private mount namespace (`unshare -m`): what the
    /// script mounts (a read-only bind, a small tmpfs) is gone with it and
    /// never touches the machine's mounts. Needs root or user namespaces.
    pub fn shell_private_mounts(&self, script: &str) -> Command {
        let sh = self.shell(script, &[]);
        let mut u = Command::new("unshare");
        u.arg("-m").arg("sh").args(sh.get_args());
        for (k, v) in sh.get_envs() {
            match v {
                Some(v) => u.env(k, v),
                None => u.env_remove(k),
            };
        }
        if let Some(d) = sh.get_current_dir() {
            u.current_dir(d);
        }
        u
    }

    /// A path inside the repository.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Writes a file inside the repository, creating directories.
    pub fn write(&self, rel: &str, text: &str) {
        let p = self.root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// The git common dir (`.git`).
    pub fn git_dir(&self) -> PathBuf {
        self.root.join(".git")
    }

    /// Filters for snapshots: this context's paths, ULIDs, times, durations
    /// and versions become stable placeholders.
    pub fn filters(&self) -> Vec<(String, String)> {
        let base = self.root.parent().unwrap_or(Path::new("/"));
        vec![
            (
                regex_escape(&self.root.display().to_string()),
                "[REPO]".into(),
            ),
            (
                regex_escape(&self.home.display().to_string()),
                "[HOME]".into(),
            ),
            (regex_escape(&base.display().to_string()), "[TMP]".into()),
            (r"\b[0-7][0-9A-HJKMNP-TV-Z]{25}\b".into(), "[ULID]".into()),
            (
                r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z".into(),
                "[TIME]".into(),
            ),
            (r"\b\d+(\.\d+)? ?(ms|µs|s)\b".into(), "[DURATION]".into()),
            (r"\b\d+ KiB\b".into(), "[SIZE]".into()),
            (
                r"git version [0-9][^\s]*".into(),
                "git version [GIT]".into(),
            ),
        ]
    }

    /// [`Self::insta_settings`] plus `extra` (regex, replacement) filters,
    /// applied after this context's own.
    pub fn insta_settings_with(&self, extra: &[(&str, &str)]) -> insta::Settings {
        let mut s = self.insta_settings();
        for (re, rep) in extra {
            s.add_filter(re, *rep);
        }
        s
    }

    /// insta settings with [`Self::filters`] applied; bind to scope in a test.
    pub fn insta_settings(&self) -> insta::Settings {
        let mut s = insta::Settings::clone_current();
        for (re, rep) in self.filters() {
            s.add_filter(&re, rep);
        }
        s.set_prepend_module_to_snapshot(false);
        s
    }
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
