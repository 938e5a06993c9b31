//! Team scale through the binary, on a real PostgreSQL server
//! (`.ci/postgres`): two machines' hook sessions forwarded to one team
//! store, the team views over both and narrowed by host or user, the
//! database away (hooks unaffected, the views fall back with a warning,
//! nothing lost), and a password never taken from the configuration.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::Stdio;

use agentops_testkit::pg::{PgServer, TestDb};
use agentops_testkit::{Run, TestContext};
use serde_json::{Value, json};

struct Machine {
    ctx: TestContext,
    env: Vec<(&'static str, String)>,
}

impl Machine {
    fn new(server: &PgServer, db: &TestDb, host: &str, user: &str) -> Self {
        let ctx = TestContext::new(env!("CARGO_BIN_EXE_agentops"));
        ctx.run(&["init"]).ok();
        let mut env = server.child_env(db);
        env.push(("AGENTOPS_HOST", host.into()));
        env.push(("AGENTOPS_USER", user.into()));
        Self { ctx, env }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.ctx.run_env(args, &self.env)
    }

    fn with_url(&self, url: &str, args: &[&str]) -> Run {
        let env: Vec<(&str, String)> = self
            .env
            .iter()
            .map(|(k, v)| {
                if *k == "AGENTOPS_STORE_URL" {
                    (*k, url.to_owned())
                } else {
                    (*k, v.clone())
                }
            })
            .collect();
        self.ctx.run_env(args, &env)
    }

    fn hook(&self, url: Option<&str>, v: Value) -> Run {
        let mut cmd = self.ctx.command(&["hook", "claude"]);
        for (k, val) in &self.env {
            cmd.env(k, val);
        }
        if let Some(u) = url {
            cmd.env("AGENTOPS_STORE_URL", u);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(v.to_string().as_bytes())
            .unwrap();
        child.wait_with_output().unwrap().into()
    }

    fn session(&self, url: Option<&str>, sid: &str, tools: usize) {
        let send = |mut v: Value| {
            v["session_id"] = json!(sid);
            v["cwd"] = json!(self.ctx.root);
            let r = self.hook(url, v);
            assert_eq!(r.code, 0, "{}", r.stderr);
        };
        send(json!({"hook_event_name": "SessionStart", "source": "startup"}));
        for i in 0..tools {
            let id = format!("toolu_{sid}_{i}");
            send(json!({"hook_event_name": "PreToolUse", "tool_name": "Bash",
                "tool_input": {"command": format!("echo {i}")}, "tool_use_id": id}));
            send(
                json!({"hook_event_name": "PostToolUse", "tool_name": "Bash",
                "tool_input": {"command": format!("echo {i}")}, "tool_use_id": id,
                "tool_response": {"stdout": "ok"}}),
            );
        }
        send(json!({"hook_event_name": "SessionEnd", "reason": "exit"}));
    }
}

fn json_of(r: &Run) -> Value {
    assert_eq!(r.code, 0, "exit {}\n{}\n{}", r.code, r.stdout, r.stderr);
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

fn ids(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s["session_id"]
                .as_str()
                .or(s["id"].as_str())
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    out.sort();
    out
}

fn dead_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("postgres://agentops@127.0.0.1:{port}/nowhere")
}

#[test]
fn two_machines_meet_in_the_team_store() {
    let Some(server) = PgServer::from_env("two_machines_meet_in_the_team_store") else {
        return;
    };
    let db = server.fresh_db().unwrap();
    let a = Machine::new(&server, &db, "host-a", "alice");
    let b = Machine::new(&server, &db, "host-b", "bob");
    a.session(None, "a-s1", 2);
    b.session(None, "b-s1", 3);

    // Before anything is forwarded, each machine sees its own.
    assert_eq!(
        ids(&json_of(&a.run(&["sessions", "--json", "--local"]))),
        ["a-s1"]
    );

    let migrated = a.run(&["store", "migrate"]);
    assert!(
        migrated.ok().contains("schema version 2 (applied 1, 2)"),
        "{}",
        migrated.stdout
    );
    let again = a.run(&["store", "migrate"]);
    assert!(again.ok().contains("is current"), "{}", again.stdout);

    let pushed = json_of(&a.run(&["store", "push", "--json"]));
    let a_events = pushed["report"]["sent"].as_u64().unwrap();
    assert!(a_events >= 6, "{pushed}");
    assert_eq!(pushed["host"], "host-a");
    // Nothing goes twice.
    let twice = json_of(&a.run(&["store", "push", "--json"]));
    assert_eq!(twice["report"]["sent"], 0, "{twice}");
    let b_events = json_of(&b.run(&["store", "push", "--json"]))["report"]["sent"]
        .as_u64()
        .unwrap();

    // The team views show both machines, and narrow to one.
    assert_eq!(
        ids(&json_of(&a.run(&["sessions", "--json"]))),
        ["a-s1", "b-s1"]
    );
    assert_eq!(
        ids(&json_of(&b.run(&["sessions", "--json"]))),
        ["a-s1", "b-s1"]
    );
    assert_eq!(
        ids(&json_of(
            &a.run(&["sessions", "--json", "--host", "host-b"])
        )),
        ["b-s1"]
    );
    assert_eq!(
        ids(&json_of(&a.run(&["sessions", "--json", "--user", "alice"]))),
        ["a-s1"]
    );
    let stats = |m: &Machine, extra: &[&str]| -> i64 {
        let mut args = vec!["stats", "--by", "session", "--json"];
        args.extend_from_slice(extra);
        json_of(&m.run(&args))["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["tool_calls"].as_i64().unwrap_or(0))
            .sum()
    };
    assert_eq!(stats(&a, &[]), 5, "tool calls of both machines");
    assert_eq!(stats(&a, &["--local"]), 2);
    assert_eq!(stats(&b, &["--host", "host-a"]), 2);
    // A session of the other machine traces from here.
    let trace = json_of(&a.run(&["trace", "b-s1", "--json"]));
    assert!(trace.to_string().contains("Bash"), "{trace}");

    let status = json_of(&a.run(&["store", "status", "--json"]));
    assert_eq!(
        status["team"]["events"].as_u64().unwrap(),
        a_events + b_events,
        "{status}"
    );
    assert_eq!(status["forwarding"]["behind"], 0, "{status}");
    let text = a.run(&["store", "status"]);
    assert!(text.ok().contains("alice@host-a"), "{}", text.stdout);
    assert!(!text.stdout.contains(&server.password) || server.password.is_empty());
}

#[test]
fn the_database_away_loses_nothing() {
    let Some(server) = PgServer::from_env("the_database_away_loses_nothing") else {
        return;
    };
    let db = server.fresh_db().unwrap();
    let a = Machine::new(&server, &db, "host-a", "alice");
    let dead = dead_url();
    // Hooks never touch the team store: with it unreachable they answer as
    // ever, and the session is kept in this machine's journal.
    let started = std::time::Instant::now();
    a.session(Some(&dead), "a-down", 2);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let r = a.with_url(&dead, &["store", "push"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot reach the team store"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(&dead), "{}", r.stderr);
    let r = a.with_url(&dead, &["store", "status"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("unreachable"), "{}", r.stdout);
    // A view falls back to this machine with a warning; a filtered one
    // cannot and says so.
    let r = a.with_url(&dead, &["sessions", "--json"]);
    assert_eq!(ids(&json_of(&r)), ["a-down"]);
    assert!(
        r.stderr.contains("showing this machine's journal only"),
        "{}",
        r.stderr
    );
    let r = a.with_url(&dead, &["sessions", "--host", "host-a"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    // The database back: everything arrives, once.
    a.session(None, "a-up", 1);
    let pushed = json_of(&a.run(&["store", "push", "--json"]));
    assert_eq!(pushed["report"]["skipped"], 0);
    assert_eq!(
        ids(&json_of(&a.run(&["sessions", "--json"]))),
        ["a-down", "a-up"]
    );
    let local_last = pushed["report"]["local_last"].as_u64().unwrap();
    let status = json_of(&a.run(&["store", "status", "--json"]));
    assert_eq!(status["team"]["events"].as_u64().unwrap(), local_last);
}

#[test]
fn a_password_in_store_url_is_refused() {
    let ctx = TestContext::new(env!("CARGO_BIN_EXE_agentops"));
    ctx.run(&["init"]).ok();
    ctx.write(
        ".agents/config.toml",
        "[store]\nurl = \"postgres://app:hunter2@db.internal/team\"\n",
    );
    let r = ctx.run(&["store", "status"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains(".agents/config.toml:2"), "{}", r.stderr);
    assert!(r.stderr.contains("store.url"), "{}", r.stderr);
    assert!(r.stderr.contains("PGPASSWORD"), "{}", r.stderr);
    assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);
    // The same from the environment and the flag.
    let r = ctx.run_env(
        &["runs"],
        &[(
            "AGENTOPS_STORE_URL",
            "postgres://app:hunter2@db/team".into(),
        )],
    );
    assert_eq!(r.code, 2);
    assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);
    let r = ctx.run(&["--store", "postgres://app:hunter2@db/team", "runs"]);
    assert_eq!(r.code, 2);
    assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);
    // Without a team store the team commands say what to set.
    ctx.write(".agents/config.toml", "");
    let r = ctx.run(&["store", "push"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no team store"), "{}", r.stderr);
}
