//! Metrics kept beside the journal: every append folds the events that carry
//! numbers (model calls, tool calls, gate verdicts, steps, retries) into a
//! rollup keyed by (UTC day, run or session, agent, model), in the same
//! transaction. `agentops stats` and `agentops status` read the rollup, so
//! they cost the same over a thousand events as over a million.

use agentops_core::EventKind;
use serde_json::Value;

/// Microseconds in a day.
pub const DAY_US: i64 = 86_400_000_000;

/// The numbers one row of the rollup sums.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Sums {
    pub llm_calls: i64,
    pub llm_errors: i64,
    /// All prompt tokens, cached included.
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_creation_tokens: i64,
    pub cost_usd: f64,
    /// Model calls that had no price (unknown model, no reported cost).
    pub unpriced_calls: i64,
    pub llm_ms: f64,
    pub llm_ms_max: f64,
    pub tool_calls: i64,
    pub tool_errors: i64,
    pub tool_ms: f64,
    pub gates: i64,
    pub gates_passed: i64,
    pub retries: i64,
    pub steps: i64,
    pub step_ms: f64,
    pub step_ms_max: f64,
}

impl Sums {
    /// Adds `o` into `self`.
    pub fn add(&mut self, o: &Sums) {
        self.llm_calls += o.llm_calls;
        self.llm_errors += o.llm_errors;
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.cache_read_tokens += o.cache_read_tokens;
        self.cache_creation_tokens += o.cache_creation_tokens;
        self.cost_usd += o.cost_usd;
        self.unpriced_calls += o.unpriced_calls;
        self.llm_ms += o.llm_ms;
        self.llm_ms_max = self.llm_ms_max.max(o.llm_ms_max);
        self.tool_calls += o.tool_calls;
        self.tool_errors += o.tool_errors;
        self.tool_ms += o.tool_ms;
        self.gates += o.gates;
        self.gates_passed += o.gates_passed;
        self.retries += o.retries;
        self.steps += o.steps;
        self.step_ms += o.step_ms;
        self.step_ms_max = self.step_ms_max.max(o.step_ms_max);
    }

    /// Model and tool calls that failed, over all model and tool calls.
    pub fn error_rate(&self) -> Option<f64> {
        let n = self.llm_calls + self.tool_calls;
        (n > 0).then(|| (self.llm_errors + self.tool_errors) as f64 / n as f64)
    }
}

/// One rollup row: a (day, run, agent, model) cell, with what is known of
/// its run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RollupRow {
    /// Days since the Unix epoch (UTC).
    pub day: i64,
    pub run_id: String,
    /// Empty when the events named no agent.
    pub agent: String,
    /// Empty for events without a model (tool calls, gates).
    pub model: String,
    /// The workflow, for runs.
    pub workflow: Option<String>,
    /// The harness, for harness sessions.
    pub harness: Option<String>,
    pub sums: Sums,
}

/// What one event adds to the rollup: (agent, model, sums).
pub fn delta(kind: &EventKind, body: &Value) -> Option<(String, String, Sums)> {
    let s = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let f = |k: &str| body.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let agent = s("agent");
    let mut d = Sums::default();
    let mut model = String::new();
    match kind {
        EventKind::LlmCall => {
            model = s("model");
            let u = body.get("usage").unwrap_or(&Value::Null);
            let n = |k: &str| u.get(k).and_then(Value::as_i64).unwrap_or(0);
            d.llm_calls = 1;
            d.llm_errors = i64::from(body.get("error").is_some_and(|e| !e.is_null()));
            d.input_tokens = n("input_tokens");
            d.output_tokens = n("output_tokens");
            d.cache_read_tokens = n("cache_read_tokens");
            d.cache_creation_tokens = n("cache_creation_tokens");
            match body.get("cost_usd").and_then(Value::as_f64) {
                Some(c) => d.cost_usd = c,
                None => d.unpriced_calls = 1,
            }
            d.llm_ms = f("duration_ms");
            d.llm_ms_max = d.llm_ms;
        }
        EventKind::ToolCall => {
            d.tool_calls = 1;
            let failed = body.get("is_error").and_then(Value::as_bool) == Some(true)
                || body.get("ok").and_then(Value::as_bool) == Some(false);
            d.tool_errors = i64::from(failed);
            d.tool_ms = f("duration_ms");
        }
        EventKind::GateVerdict => {
            // An approval waiting for a person is not a verdict yet.
            if body.get("pending").and_then(Value::as_bool) == Some(true) {
                return None;
            }
            d.gates = 1;
            d.gates_passed = i64::from(matches!(
                body.get("verdict").and_then(Value::as_str),
                Some("PASS" | "WARN")
            ));
        }
        EventKind::StepCompleted => {
            d.steps = 1;
            d.step_ms = f("duration_ms");
            d.step_ms_max = d.step_ms;
        }
        EventKind::StepRetry => d.retries = 1,
        _ => return None,
    }
    Some((agent, model, d))
}

/// What an event says about its run: (workflow, harness).
pub fn run_info(kind: &EventKind, body: &Value) -> Option<(Option<String>, Option<String>)> {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    match kind {
        EventKind::RunStarted => Some((s(body.pointer("/workflow/name")), None)),
        EventKind::SessionStarted | EventKind::HookReceived => Some((None, s(body.get("harness")))),
        _ => None,
    }
}

/// The UTC day of a timestamp in microseconds.
pub fn day_of(ts_us: i64) -> i64 {
    ts_us.div_euclid(DAY_US)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn llm_call_delta() {
        let (agent, model, d) = delta(
            &EventKind::LlmCall,
            &json!({"agent": "coder", "model": "gpt-5", "usage": {"input_tokens": 100, "output_tokens": 7, "cache_read_tokens": 60, "cache_creation_tokens": 0}, "cost_usd": 0.5, "duration_ms": 12.0}),
        )
        .unwrap();
        assert_eq!((agent.as_str(), model.as_str()), ("coder", "gpt-5"));
        assert_eq!(
            (
                d.llm_calls,
                d.input_tokens,
                d.cache_read_tokens,
                d.output_tokens
            ),
            (1, 100, 60, 7)
        );
        assert_eq!(d.cost_usd, 0.5);
        let (_, _, e) = delta(
            &EventKind::LlmCall,
            &json!({"error": "boom", "cost_usd": null}),
        )
        .unwrap();
        assert_eq!((e.llm_errors, e.unpriced_calls), (1, 1));
    }

    #[test]
    fn tool_and_gate_deltas() {
        let t = |b| delta(&EventKind::ToolCall, &b).unwrap().2.tool_errors;
        assert_eq!(t(json!({"is_error": true})), 1);
        assert_eq!(t(json!({"ok": false})), 1);
        assert_eq!(t(json!({"ok": true})), 0);
        let g = |v: &str| delta(&EventKind::GateVerdict, &json!({ "verdict": v }));
        assert_eq!(g("PASS").unwrap().2.gates_passed, 1);
        assert_eq!(g("FAIL").unwrap().2.gates_passed, 0);
        assert!(
            delta(
                &EventKind::GateVerdict,
                &json!({"verdict": "FAIL", "pending": true})
            )
            .is_none()
        );
        assert!(delta(&EventKind::HookReceived, &json!({})).is_none());
        assert_eq!(day_of(DAY_US * 3 + 5), 3);
        assert_eq!(day_of(-1), -1);
    }

    /// The rollup reads what today's writers store (the protocol's types),
    /// and what older releases stored (`ok` for a tool result).
    #[test]
    fn reads_what_the_protocol_writes() {
        use agentops_protocol::event as p;
        let failed = serde_json::to_value(p::ToolCall {
            name: "Bash".into(),
            is_error: true,
            duration_ms: Some(3.0),
            ..p::ToolCall::default()
        })
        .unwrap();
        let (_, _, d) = delta(&EventKind::ToolCall, &failed).unwrap();
        assert_eq!((d.tool_calls, d.tool_errors), (1, 1));
        let (_, _, old) =
            delta(&EventKind::ToolCall, &json!({"name": "Bash", "ok": false})).unwrap();
        assert_eq!(old.tool_errors, 1);
        let call = serde_json::to_value(p::LlmCall {
            model: Some("m".into()),
            agent: Some("a".into()),
            usage: agentops_protocol::Usage {
                input_tokens: 10,
                output_tokens: 3,
                cache_read_tokens: 4,
                cache_creation_tokens: 0,
            },
            cost_usd: Some(0.5),
            ..p::LlmCall::default()
        })
        .unwrap();
        let (agent, model, d) = delta(&EventKind::LlmCall, &call).unwrap();
        assert_eq!((agent.as_str(), model.as_str()), ("a", "m"));
        assert_eq!(
            (
                d.input_tokens,
                d.output_tokens,
                d.cache_read_tokens,
                d.cost_usd,
                d.llm_errors
            ),
            (10, 3, 4, 0.5, 0)
        );
        let retry = p::EventBody::from(p::StepRetry {
            phase: "x".into(),
            attempt: 1,
            feedback: String::new(),
            agent: "a".into(),
        });
        let (_, _, d) = delta(&retry.kind(), &retry.to_value()).unwrap();
        assert_eq!(d.retries, 1);
    }
}
