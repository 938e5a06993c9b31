//! Issue 17's flywheel eval: `bench/flywheel/set.json` (entries in topics,
//! one that helps per topic; simulated sessions with their task prompt)
//! replayed in order through the real hook processes, once with automatic
//! feedback and once without (`hooks.feedback = false`), each in a fresh
//! repository. A session sends its prompt (UserPromptSubmit), reads the
//! helping entry's file if it was injected (PreToolUse), and stops with its
//! stop gate passing (Stop). Reported: Hit@1 and Hit@3 of what is injected,
//! for the first and last third of the sessions; precision (injected entries
//! of the session's topic); entries of other topics injected.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

struct Outcome {
    /// Per session: rank (0-based) of the helping entry among the injected, if injected.
    rank: Vec<Option<usize>>,
    injected: usize,
    on_topic: usize,
    off_topic: usize,
}

fn hook(bin: &Path, dir: &Path, v: &Value) -> String {
    crate::harness::hook_once(bin, dir, &v.to_string())
}

fn replay(bin: &Path, set: &Value, feedback: bool) -> Outcome {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    crate::corpus::git(dir, &["init", "-q", "-b", "main"]);
    crate::corpus::git(dir, &["commit", "-q", "--allow-empty", "-m", "init"]);
    let run = |args: &[&str]| {
        let o = Command::new(bin)
            .args(args)
            .current_dir(dir)
            .output()
            .expect("agentops");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    run(&["init", "-q"]);
    std::fs::write(
        dir.join(".agents/config.toml"),
        format!(
            "[hooks]\nfeedback = {feedback}\nstop_gates = [\"ok\"]\n\n[gates.ok]\nkind = \"command\"\ncommand = \"true\"\n"
        ),
    )
    .expect("config");
    // key → (id, path, topic)
    let mut by_key: HashMap<String, (String, String, String)> = HashMap::new();
    let mut topic_of: HashMap<String, String> = HashMap::new();
    for e in set["entries"].as_array().expect("entries") {
        let out = run(&[
            "learn",
            e["title"].as_str().expect("title"),
            "--body",
            e["body"].as_str().expect("body"),
            "--json",
        ]);
        let v: Value = serde_json::from_str(&out).expect("json");
        let id = v["id"].as_str().expect("id").to_owned();
        let path = v["path"].as_str().expect("path").to_owned();
        let topic = e["topic"].as_str().expect("topic").to_owned();
        topic_of.insert(id.clone(), topic.clone());
        by_key.insert(
            e["key"].as_str().expect("key").to_owned(),
            (id, path, topic),
        );
    }
    let cwd = dir.to_str().expect("utf-8");
    let mut out = Outcome {
        rank: Vec::new(),
        injected: 0,
        on_topic: 0,
        off_topic: 0,
    };
    for (i, s) in set["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .enumerate()
    {
        let sid = format!("flywheel-{feedback}-{i:03}");
        let reply = hook(
            bin,
            dir,
            &json!({"session_id": sid, "cwd": cwd, "hook_event_name": "UserPromptSubmit", "prompt": s["prompt"]}),
        );
        let text = serde_json::from_str::<Value>(&reply)
            .ok()
            .and_then(|v| {
                v["hookSpecificOutput"]["additionalContext"]
                    .as_str()
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        // Injected ids in the order the packet gives them.
        let mut order: Vec<(usize, &String)> = topic_of
            .keys()
            .filter_map(|id| text.find(&format!("`{id}`")).map(|at| (at, id)))
            .collect();
        order.sort();
        let topic = s["topic"].as_str().expect("topic");
        for (_, id) in &order {
            out.injected += 1;
            if topic_of[*id] == topic {
                out.on_topic += 1;
            } else {
                out.off_topic += 1;
            }
        }
        let (helps_id, helps_path, _) = &by_key[s["helps"].as_str().expect("helps")];
        let rank = order.iter().position(|(_, id)| *id == helps_id);
        out.rank.push(rank);
        if rank.is_some() {
            hook(
                bin,
                dir,
                &json!({"session_id": sid, "cwd": cwd, "hook_event_name": "PreToolUse", "tool_name": "Read",
                    "tool_input": {"file_path": format!("{cwd}/{helps_path}")}}),
            );
        }
        hook(
            bin,
            dir,
            &json!({"session_id": sid, "cwd": cwd, "hook_event_name": "Stop", "stop_hook_active": false}),
        );
    }
    out
}

fn hit(ranks: &[Option<usize>], k: usize) -> f64 {
    if ranks.is_empty() {
        return 0.0;
    }
    ranks.iter().filter(|r| r.is_some_and(|r| r < k)).count() as f64 / ranks.len() as f64
}

pub fn run(_quick: bool) {
    let bin = crate::agentops_bin();
    let set_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("flywheel/set.json");
    let set: Value =
        serde_json::from_str(&std::fs::read_to_string(&set_path).expect("set")).expect("json");
    let n = set["sessions"].as_array().map_or(0, Vec::len);
    let third = n / 3;
    println!(
        "## flywheel ({} entries, {n} sessions, {})",
        set["entries"].as_array().map_or(0, Vec::len),
        set_path.display()
    );
    println!();
    println!(
        "| feedback | Hit@1 first third | Hit@1 last third | Hit@3 first third | Hit@3 last third | injected | precision (on topic) | off-topic injected |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut last = HashMap::new();
    let mut misses = String::new();
    for feedback in [false, true] {
        let o = replay(&bin, &set, feedback);
        let first = &o.rank[..third];
        let end = &o.rank[n - third..];
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.2} | {} |",
            if feedback { "on" } else { "off" },
            hit(first, 1),
            hit(end, 1),
            hit(first, 3),
            hit(end, 3),
            o.injected,
            o.on_topic as f64 / o.injected.max(1) as f64,
            o.off_topic
        );
        last.insert(feedback, (hit(end, 1), hit(end, 3), o.off_topic));
        if feedback {
            let missed: Vec<&str> = o
                .rank
                .iter()
                .zip(set["sessions"].as_array().into_iter().flatten())
                .filter(|(r, _)| r.is_none())
                .filter_map(|(_, s)| s["prompt"].as_str())
                .collect();
            misses = missed
                .iter()
                .map(|m| format!("\"{m}\""))
                .collect::<Vec<_>>()
                .join(", ");
        }
    }
    let (off, on) = (last[&false], last[&true]);
    println!();
    if !misses.is_empty() {
        println!("never injected (below the relevance threshold, feedback on): {misses}");
    }
    println!(
        "feedback raises last-third Hit@1: {} ({:.2} → {:.2}); off-topic injections not increased: {} ({} → {})",
        if on.0 > off.0 { "yes" } else { "NO" },
        off.0,
        on.0,
        if on.2 <= off.2 { "yes" } else { "NO" },
        off.2,
        on.2
    );
}
