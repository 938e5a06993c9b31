//! `judge` and `council` gates: a model reads a rubric and the change and
//! answers with a structured verdict; a council combines several judges with
//! a consensus rule.

use std::path::{Path, PathBuf};

use agentops_llm::{BackendSpec, Message, Request};
use serde_json::{Value, json};

use crate::{Gate, Verdict};

/// What judges need to reach a model.
pub struct JudgeEnv<'a> {
    pub llm: &'a agentops_core::config::LlmConfig,
    /// `.agents/` of the project (rubric files are relative to it).
    pub agents_dir: PathBuf,
    /// Reads environment variables (keys).
    pub env: &'a (dyn Fn(&str) -> Option<String> + Sync),
    /// The agent whose work is judged (a judge with this name is refused).
    pub worker: Option<String>,
}

/// Most characters of the diff a judge reads.
pub const MAX_DIFF_CHARS: usize = 60_000;

/// A parsed verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub verdict: Verdict,
    pub score: Option<f64>,
    pub reasons: Vec<String>,
}

/// Finds the verdict in a model's answer: the first JSON object with a
/// `verdict` or `score` (also inside a ```json fence or amid prose), else a
/// PASS/WARN/FAIL word; a score alone maps through `threshold` (≥ PASS,
/// ≥ threshold − 0.2 WARN, else FAIL). `None` when nothing usable is there.
pub fn parse_verdict(text: &str, threshold: f64) -> Option<Judgement> {
    let verdict_of = |s: &str| match s.trim().to_ascii_uppercase().as_str() {
        "PASS" | "PASSED" | "APPROVE" | "APPROVED" => Some(Verdict::Pass),
        "WARN" | "WARNING" => Some(Verdict::Warn),
        "FAIL" | "FAILED" | "REJECT" | "REJECTED" => Some(Verdict::Fail),
        _ => None,
    };
    let from_score = |s: f64| {
        if s >= threshold {
            Verdict::Pass
        } else if s >= threshold - 0.2 {
            Verdict::Warn
        } else {
            Verdict::Fail
        }
    };
    let bytes = text.as_bytes();
    for (start, _) in text.match_indices('{') {
        let mut depth = 0i32;
        let mut in_str = false;
        let mut esc = false;
        for (i, &b) in bytes.iter().enumerate().skip(start) {
            if in_str {
                match (esc, b) {
                    (true, _) => esc = false,
                    (false, b'\\') => esc = true,
                    (false, b'"') => in_str = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_str = true,
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        if let Ok(Value::Object(o)) =
                            serde_json::from_str::<Value>(&text[start..=i])
                        {
                            let score = o.get("score").and_then(|s| {
                                s.as_f64()
                                    .or_else(|| s.as_str().and_then(|x| x.trim().parse().ok()))
                            });
                            let score = score.filter(|s| s.is_finite()).map(|s| s.clamp(0.0, 1.0));
                            let verdict = o
                                .get("verdict")
                                .and_then(Value::as_str)
                                .and_then(verdict_of);
                            if verdict.is_some() || score.is_some() {
                                let reasons = match o.get("reasons").or_else(|| o.get("reason")) {
                                    Some(Value::Array(a)) => a
                                        .iter()
                                        .map(|r| {
                                            r.as_str().map_or_else(|| r.to_string(), str::to_owned)
                                        })
                                        .collect(),
                                    Some(Value::String(s)) => vec![s.clone()],
                                    _ => Vec::new(),
                                };
                                return Some(Judgement {
                                    verdict: verdict
                                        .unwrap_or_else(|| from_score(score.unwrap_or(0.0))),
                                    score,
                                    reasons,
                                });
                            }
                        }
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    // No JSON: a verdict word on its own.
    let re = regex::Regex::new(r"(?i)\bverdict\s*[:=]?\s*\**\s*(PASS|WARN|FAIL)\b").ok()?;
    re.captures(text)
        .and_then(|c| verdict_of(&c[1]))
        .map(|v| Judgement {
            verdict: v,
            score: None,
            reasons: vec![
                text.lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .chars()
                    .take(300)
                    .collect(),
            ],
        })
}

fn patch(root: &Path, base: &str) -> String {
    let p = agentops_git::cmd::patch_with_untracked(root, base);
    let p = agentops_core::redact::redact(&p).into_owned();
    if p.len() > MAX_DIFF_CHARS {
        let mut cut = MAX_DIFF_CHARS;
        while !p.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}\n[diff cut at {MAX_DIFF_CHARS} characters]\n", &p[..cut])
    } else {
        p
    }
}

/// Runs one judge: (verdict, summary, evidence).
pub fn judge(
    g: &Gate,
    spec: &crate::JudgeCheck,
    root: &Path,
    base: &str,
    env: Option<&JudgeEnv<'_>>,
) -> (Verdict, String, Value) {
    let Some(env) = env else {
        return (Verdict::Fail, "judge gates need the model configuration; run them through `agentops gate run` or a workflow".into(), json!({}));
    };
    if let (Some(a), Some(w)) = (&spec.agent, &env.worker)
        && a == w
    {
        return (
            Verdict::Fail,
            format!(
                "judge `{}` is agent `{a}`, whose work it would judge; use another agent",
                g.name
            ),
            json!({"judge": a}),
        );
    }
    let backend_str = spec.backend.clone();
    let bspec = match BackendSpec::parse(&backend_str) {
        Ok(b) => b,
        Err(m) => return (Verdict::Fail, format!("backend: {m}"), json!({})),
    };
    let rubric_path = env.agents_dir.join(&spec.rubric);
    let rubric = match std::fs::read_to_string(&rubric_path) {
        Ok(r) => r,
        Err(e) => {
            return (
                Verdict::Fail,
                format!("cannot read the rubric {}: {e}", rubric_path.display()),
                json!({}),
            );
        }
    };
    let backend = match agentops_llm::build(
        &bspec,
        &agentops_llm::BuildOptions {
            llm: env.llm,
            workdir: root.to_path_buf(),
            env: env.env,
            base_url: None,
            key_env: None,
            children_file: None,
        },
    ) {
        Ok(b) => b,
        Err(e) => {
            return (
                Verdict::Fail,
                format!("judge backend: {e}"),
                json!({"backend": backend_str}),
            );
        }
    };
    let threshold = spec.threshold();
    let req = Request {
        model: bspec.model().unwrap_or(&backend_str).to_owned(),
        system: "You are a strict reviewer acting as a validation gate. Judge the change only against the rubric. Answer with one JSON object and nothing else: {\"score\": <0..1>, \"verdict\": \"PASS\"|\"WARN\"|\"FAIL\", \"reasons\": [\"…\"]}".into(),
        messages: vec![Message::user(format!("## Rubric\n\n{}\n\n## The change (diff against {base})\n\n```diff\n{}```\n", rubric.trim(), patch(root, base)))],
        tools: Vec::new(),
        max_tokens: 1_024,
        temperature: Some(0.0),
    };
    let resp = match backend.complete(&req, &mut |_| {}) {
        Ok(r) => r,
        Err(e) => {
            return (
                Verdict::Fail,
                format!("the judge could not answer: {e}"),
                json!({"backend": backend_str, "error_type": e.kind.as_str()}),
            );
        }
    };
    let text = resp.text();
    match parse_verdict(&text, threshold) {
        Some(j) => {
            let summary = format!(
                "judge {}: {}{}{}",
                spec.agent.as_deref().unwrap_or(&backend_str),
                j.verdict.as_str(),
                j.score
                    .map(|s| format!(" (score {s:.2})"))
                    .unwrap_or_default(),
                j.reasons
                    .first()
                    .map(|r| format!(" — {r}"))
                    .unwrap_or_default()
            );
            (
                j.verdict,
                summary,
                json!({"backend": backend_str, "model": resp.model, "score": j.score, "verdict": j.verdict, "reasons": j.reasons, "threshold": threshold, "usage": resp.usage}),
            )
        }
        None => (
            Verdict::Fail,
            "the judge's answer has no verdict (expected JSON with score and verdict)".into(),
            json!({"backend": backend_str, "unparsed": text.chars().take(500).collect::<String>()}),
        ),
    }
}

/// How a council decides.
pub fn consensus(rule: crate::CouncilRule, verdicts: &[Verdict]) -> Verdict {
    use crate::CouncilRule;
    let pass = verdicts.iter().filter(|v| **v == Verdict::Pass).count();
    let fail = verdicts.iter().filter(|v| **v == Verdict::Fail).count();
    match rule {
        CouncilRule::AllPass => {
            if pass == verdicts.len() {
                Verdict::Pass
            } else {
                Verdict::Fail
            }
        }
        CouncilRule::Majority => {
            if pass * 2 > verdicts.len() {
                Verdict::Pass
            } else {
                Verdict::Fail
            }
        }
        CouncilRule::AnyFailBlocks => {
            if fail > 0 {
                Verdict::Fail
            } else if pass == verdicts.len() {
                Verdict::Pass
            } else {
                Verdict::Warn
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_are_found_in_json_fences_prose_and_words() {
        let j = parse_verdict(
            "```json\n{\"score\": 0.9, \"verdict\": \"pass\", \"reasons\": [\"tests added\"]}\n```",
            0.7,
        )
        .unwrap();
        assert_eq!(
            (j.verdict, j.score, j.reasons[0].as_str()),
            (Verdict::Pass, Some(0.9), "tests added")
        );
        let j = parse_verdict(
            "Sure! {\"note\": {\"x\": \"}\"}} then {\"score\": \"0.3\"} done",
            0.7,
        )
        .unwrap();
        assert_eq!(j.verdict, Verdict::Fail);
        let j = parse_verdict("{\"score\": 0.6}", 0.7).unwrap();
        assert_eq!(j.verdict, Verdict::Warn);
        let j = parse_verdict("Verdict: **FAIL** because no tests", 0.7).unwrap();
        assert_eq!(j.verdict, Verdict::Fail);
        assert!(parse_verdict("I think it's fine.", 0.7).is_none());
        assert!(parse_verdict("{\"verdict\": \"maybe\"}", 0.7).is_none());
        assert!(parse_verdict("{unclosed", 0.7).is_none());
    }

    #[test]
    fn consensus_rules() {
        use crate::CouncilRule::*;
        use Verdict::*;
        assert_eq!(consensus(AllPass, &[Pass, Pass]), Pass);
        assert_eq!(consensus(AllPass, &[Pass, Warn]), Fail);
        assert_eq!(consensus(Majority, &[Pass, Pass, Fail]), Pass);
        assert_eq!(consensus(Majority, &[Pass, Fail, Warn]), Fail);
        assert_eq!(consensus(AnyFailBlocks, &[Pass, Warn]), Warn);
        assert_eq!(consensus(AnyFailBlocks, &[Pass, Pass, Fail]), Fail);
    }
}
