//! The turn loop of one attempt: ask the model (or answer from the journal),
//! run the tools it asks for, feed their results back, until it answers
//! without tools or the turns run out. Everything with an effect (the replay
//! cache, live calls, tools, journaling) goes through [`TurnHost`], so the
//! loop's rules are tested without a journal or a model.

use agentops_llm::{Message, Part, Request, Response, Role, Usage};

use super::PhaseResult;
use crate::RunError;
use crate::tools::ToolOutput;

/// What the loop needs from the phase around it.
pub(super) trait TurnHost {
    /// The key a request is recorded under in the journal.
    fn key(&self, req: &Request) -> String;
    /// The response an earlier run recorded for `key`, consumed (replay).
    fn recorded(&mut self, key: &str) -> Option<Response>;
    /// Reports a call answered from the journal.
    fn replayed(&mut self, turn: u32, r: &Response);
    /// A live model call, durable in the journal before it returns. `Ok(Err)`
    /// ends the attempt (a stop request, a budget, a failed call).
    fn call(
        &mut self,
        req: &Request,
        key: &str,
        turn: u32,
    ) -> Result<Result<Response, PhaseResult>, RunError>;
    /// What a response cost (live or replayed: the phase's total counts both).
    fn cost(&self, r: &Response) -> f64;
    /// Runs one tool the model asked for, journaled.
    fn tool(
        &mut self,
        turn: u32,
        id: &str,
        name: &str,
        input: &serde_json::Value,
    ) -> Result<ToolOutput, RunError>;
}

/// The limits of one attempt's loop.
#[derive(Debug, Clone, Copy)]
pub(super) struct Turns {
    pub max_turns: u32,
    /// Whether the backend runs our tools (a command harness runs its own).
    pub offers_tools: bool,
}

/// What the turns of one attempt came to.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct TurnsDone {
    /// The model's last text: the phase's summary.
    pub last_text: String,
    pub usage: Usage,
    pub cost_usd: f64,
    pub live: u32,
    pub replayed: u32,
    pub turns: u32,
}

/// Runs the loop on `req` (its messages hold the attempt's first message).
pub(super) fn run_turns(
    host: &mut dyn TurnHost,
    limits: Turns,
    mut req: Request,
) -> Result<Result<TurnsDone, PhaseResult>, RunError> {
    let mut done = TurnsDone::default();
    for turn in 0..limits.max_turns {
        done.turns = turn + 1;
        let key = host.key(&req);
        let resp = match host.recorded(&key) {
            Some(r) => {
                done.replayed += 1;
                host.replayed(turn, &r);
                r
            }
            None => match host.call(&req, &key, turn)? {
                Ok(r) => {
                    done.live += 1;
                    r
                }
                Err(stop) => return Ok(Err(stop)),
            },
        };
        done.usage.add(&resp.usage);
        done.cost_usd += host.cost(&resp);
        done.last_text = resp.text();
        req.messages.push(resp.as_message());
        let uses = resp.tool_uses();
        if uses.is_empty() || !limits.offers_tools {
            break;
        }
        let mut results = Vec::with_capacity(uses.len());
        for (id, name, input) in uses {
            let out = host.tool(turn, id, name, input)?;
            results.push(Part::ToolResult {
                tool_use_id: id.to_owned(),
                content: out.content,
                is_error: out.is_error,
            });
        }
        req.messages.push(Message {
            role: Role::User,
            content: results,
        });
    }
    Ok(Ok(done))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::PauseReason;
    use pretty_assertions::assert_eq;
    use std::collections::{HashMap, VecDeque};

    /// A scripted host: responses in order, a journal of recorded ones by
    /// key, and a log of what the loop did.
    #[derive(Default)]
    struct Host {
        live: VecDeque<Response>,
        recorded: HashMap<String, VecDeque<Response>>,
        stop_before_call: Option<usize>,
        log: Vec<String>,
        sent: Vec<Request>,
    }

    fn text(t: &str) -> Response {
        Response {
            content: vec![Part::Text { text: t.into() }],
            usage: Usage {
                input_tokens: 10,
                output_tokens: 5,
                ..Usage::default()
            },
            ..Response::default()
        }
    }

    fn tool_use(id: &str, name: &str) -> Response {
        Response {
            content: vec![
                Part::Text {
                    text: format!("calling {name}"),
                },
                Part::ToolUse {
                    id: id.into(),
                    name: name.into(),
                    input: serde_json::json!({"path": "a"}),
                },
            ],
            usage: Usage {
                input_tokens: 10,
                output_tokens: 5,
                ..Usage::default()
            },
            ..Response::default()
        }
    }

    impl TurnHost for Host {
        fn key(&self, req: &Request) -> String {
            format!("k{}", req.messages.len())
        }
        fn recorded(&mut self, key: &str) -> Option<Response> {
            self.recorded.get_mut(key).and_then(VecDeque::pop_front)
        }
        fn replayed(&mut self, turn: u32, _: &Response) {
            self.log.push(format!("replayed {turn}"));
        }
        fn call(
            &mut self,
            req: &Request,
            key: &str,
            turn: u32,
        ) -> Result<Result<Response, PhaseResult>, RunError> {
            if self.stop_before_call == Some(self.sent.len()) {
                return Ok(Err(PhaseResult::Paused {
                    reason: PauseReason::Budget,
                    detail: "budget".into(),
                }));
            }
            self.sent.push(req.clone());
            self.log.push(format!("call {turn} {key}"));
            Ok(Ok(self.live.pop_front().unwrap_or_else(|| text("done"))))
        }
        fn cost(&self, _: &Response) -> f64 {
            0.5
        }
        fn tool(
            &mut self,
            turn: u32,
            id: &str,
            name: &str,
            _: &serde_json::Value,
        ) -> Result<ToolOutput, RunError> {
            self.log.push(format!("tool {turn} {id} {name}"));
            Ok(ToolOutput {
                content: format!("{name} ran"),
                is_error: name == "broken",
                wrote: vec![],
            })
        }
    }

    fn first() -> Request {
        Request {
            model: "m".into(),
            system: "s".into(),
            messages: vec![Message::user("do it".to_owned())],
            tools: vec![],
            max_tokens: 100,
            temperature: None,
        }
    }

    const TOOLS: Turns = Turns {
        max_turns: 10,
        offers_tools: true,
    };

    #[test]
    fn tools_run_and_their_results_go_back_until_a_plain_answer() {
        let mut h = Host {
            live: [
                tool_use("t1", "read_file"),
                tool_use("t2", "broken"),
                text("all done"),
            ]
            .into(),
            ..Host::default()
        };
        let done = run_turns(&mut h, TOOLS, first()).unwrap().unwrap();
        assert_eq!(
            h.log,
            [
                "call 0 k1",
                "tool 0 t1 read_file",
                "call 1 k3",
                "tool 1 t2 broken",
                "call 2 k5"
            ]
        );
        assert_eq!(
            (
                done.last_text.as_str(),
                done.live,
                done.replayed,
                done.turns
            ),
            ("all done", 3, 0, 3)
        );
        assert_eq!(done.usage.input_tokens, 30);
        assert_eq!(done.cost_usd, 1.5);
        // The third request holds the whole conversation, the failed tool's
        // result marked as an error.
        let last = &h.sent[2].messages;
        assert_eq!(last.len(), 5);
        assert_eq!(
            last[4].content,
            vec![Part::ToolResult {
                tool_use_id: "t2".into(),
                content: "broken ran".into(),
                is_error: true
            }]
        );
    }

    #[test]
    fn recorded_calls_are_answered_from_the_journal_and_live_ones_follow() {
        let mut h = Host {
            recorded: [(
                "k1".to_owned(),
                VecDeque::from([tool_use("t1", "write_file")]),
            )]
            .into(),
            live: [text("finished")].into(),
            ..Host::default()
        };
        let done = run_turns(&mut h, TOOLS, first()).unwrap().unwrap();
        // The tool of a replayed call runs again (tools are not recorded:
        // the worktree was reset to the last checkpoint).
        assert_eq!(h.log, ["replayed 0", "tool 0 t1 write_file", "call 1 k3"]);
        assert_eq!((done.live, done.replayed), (1, 1));
        // Replayed calls count toward the phase's usage and cost.
        assert_eq!(done.cost_usd, 1.0);
    }

    #[test]
    fn turns_run_out() {
        let mut h = Host {
            live: (0..10)
                .map(|i| tool_use(&format!("t{i}"), "list_files"))
                .collect(),
            ..Host::default()
        };
        let limits = Turns {
            max_turns: 2,
            offers_tools: true,
        };
        let done = run_turns(&mut h, limits, first()).unwrap().unwrap();
        assert_eq!(done.turns, 2);
        assert_eq!(h.sent.len(), 2);
        assert_eq!(done.last_text, "calling list_files");
    }

    #[test]
    fn a_backend_that_runs_its_own_tools_gets_one_call() {
        let mut h = Host {
            live: [tool_use("t1", "Bash")].into(),
            ..Host::default()
        };
        let limits = Turns {
            max_turns: 10,
            offers_tools: false,
        };
        let done = run_turns(&mut h, limits, first()).unwrap().unwrap();
        assert_eq!(h.log, ["call 0 k1"]);
        assert_eq!(done.live, 1);
    }

    #[test]
    fn a_stop_before_a_live_call_ends_the_attempt() {
        let mut h = Host {
            live: [tool_use("t1", "read_file"), text("never")].into(),
            stop_before_call: Some(1),
            ..Host::default()
        };
        let r = run_turns(&mut h, TOOLS, first()).unwrap();
        assert!(
            matches!(
                r,
                Err(PhaseResult::Paused {
                    reason: PauseReason::Budget,
                    ..
                })
            ),
            "{r:?}"
        );
        assert_eq!(h.log, ["call 0 k1", "tool 0 t1 read_file"]);
    }
}
