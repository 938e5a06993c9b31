//! Both wire formats, plain and streamed, against the scripted server over
//! real HTTP on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use agentops_llm::scripted::{Reply, Rule, Script, ScriptedServer};
use agentops_llm::{
    Backend, ErrorKind, HttpBackend, HttpOptions, Message, Part, Request, ToolSpec, Wire,
};
use serde_json::json;

fn request() -> Request {
    Request {
        model: "gpt-4.1-mini".into(),
        system: "You are a careful planner.".into(),
        messages: vec![Message::user("Plan the rate limiter")],
        tools: vec![ToolSpec {
            name: "read_file".into(),
            description: "Read a file".into(),
            input_schema: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        }],
        max_tokens: 512,
        temperature: None,
    }
}

fn backend(server: &ScriptedServer, wire: Wire, stream: bool) -> HttpBackend {
    let base = match wire {
        Wire::OpenAi => server.openai_base(),
        Wire::Anthropic => server.url(),
    };
    let mut o = HttpOptions::new(&base);
    o.api_key = Some("sk-test-key-123".into());
    o.stream = stream;
    o.backoff = Duration::from_millis(10);
    o.max_retries = 3;
    o.timeout = Duration::from_secs(10);
    HttpBackend::new(wire, o)
}

#[test]
fn text_tool_calls_and_usage_on_every_wire_and_mode() {
    for wire in [Wire::OpenAi, Wire::Anthropic] {
        for stream in [false, true] {
            let script = Script::default()
                .rule(
                    &["Plan the rate limiter"],
                    Some(0),
                    Reply {
                        text: "Let me look at the handler first, it is long enough to be split."
                            .into(),
                        tool_calls: vec![agentops_llm::scripted::ScriptedCall {
                            name: "read_file".into(),
                            input: json!({"path": "src/handler.rs", "note": "ünïcode"}),
                        }],
                        input_tokens: Some(1000),
                        output_tokens: Some(50),
                        cache_read_tokens: Some(600),
                        ..Reply::default()
                    },
                )
                .rule(&[], Some(1), Reply::text("Plan: add a token bucket."));
            let server = ScriptedServer::start(script).unwrap();
            let b = backend(&server, wire, stream);
            let mut streamed = String::new();
            let r = b
                .complete(&request(), &mut |t| streamed.push_str(t))
                .unwrap();
            let what = format!("{wire:?} stream={stream}");
            assert_eq!(
                r.text(),
                "Let me look at the handler first, it is long enough to be split.",
                "{what}"
            );
            assert_eq!(streamed, r.text(), "{what}");
            let calls = r.tool_uses();
            assert_eq!(calls.len(), 1, "{what}");
            assert_eq!(calls[0].1, "read_file");
            assert_eq!(calls[0].2["note"], "ünïcode");
            assert_eq!(r.stop_reason, "tool_use", "{what}");
            // Normalised: input includes the cache on both wires.
            assert_eq!(r.usage.input_tokens, 1000, "{what}");
            assert_eq!(r.usage.cache_read_tokens, 600, "{what}");
            assert_eq!(r.usage.output_tokens, 50, "{what}");

            // Second turn: the tool result goes back in the wire's own shape.
            let mut req = request();
            req.messages.push(r.as_message());
            req.messages.push(Message {
                role: agentops_llm::Role::User,
                content: vec![Part::ToolResult {
                    tool_use_id: calls[0].0.to_owned(),
                    content: "fn handler() {}".into(),
                    is_error: false,
                }],
            });
            let r2 = b.complete(&req, &mut |_| {}).unwrap();
            assert_eq!(r2.text(), "Plan: add a token bucket.", "{what}");
            assert_eq!(r2.stop_reason, "end_turn", "{what}");

            let got = server.received();
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].stream, stream);
            assert_eq!(got[1].turn, 1);
            let auth = got[0]
                .headers
                .iter()
                .find(|(k, _)| k == "authorization" || k == "x-api-key")
                .map(|(_, v)| v.clone())
                .unwrap();
            assert!(auth.contains("sk-test-key-123"));
            match wire {
                Wire::OpenAi => {
                    assert_eq!(got[0].path, "/v1/chat/completions");
                    assert_eq!(got[0].body["messages"][0]["role"], "system");
                    assert_eq!(got[1].body["messages"][3]["role"], "tool");
                    assert_eq!(got[1].body["messages"][3]["tool_call_id"], calls[0].0);
                    assert_eq!(got[0].body["tools"][0]["function"]["name"], "read_file");
                }
                Wire::Anthropic => {
                    assert_eq!(got[0].path, "/v1/messages");
                    assert_eq!(got[0].body["system"], "You are a careful planner.");
                    assert_eq!(
                        got[1].body["messages"][2]["content"][0]["type"],
                        "tool_result"
                    );
                    assert_eq!(got[0].body["tools"][0]["input_schema"]["type"], "object");
                    assert!(
                        got[0]
                            .headers
                            .iter()
                            .any(|(k, v)| k == "anthropic-version" && v == "2023-06-01")
                    );
                }
            }
        }
    }
}

#[test]
fn rate_limits_are_retried_honouring_retry_after() {
    for wire in [Wire::OpenAi, Wire::Anthropic] {
        let mut script = Script::default();
        script.rules.push(Rule {
            times: Some(2),
            reply: Reply {
                retry_after_s: Some(0.3),
                ..Reply::error(429, "slow down")
            },
            ..Rule::default()
        });
        script.rules.push(Rule {
            reply: Reply::text("ok"),
            ..Rule::default()
        });
        let server = ScriptedServer::start(script).unwrap();
        let b = backend(&server, wire, true);
        let t = Instant::now();
        let r = b.complete(&request(), &mut |_| {}).unwrap();
        assert_eq!(r.text(), "ok");
        assert_eq!(server.count(), 3);
        assert!(
            t.elapsed() >= Duration::from_millis(550),
            "{:?}",
            t.elapsed()
        );
    }
}

#[test]
fn errors_are_classified_and_only_transient_ones_retried() {
    let cases = [
        (401, "invalid x-api-key", ErrorKind::Auth, 1),
        (
            400,
            "prompt is too long: 210000 tokens > 200000 maximum context",
            ErrorKind::ContextOverflow,
            1,
        ),
        (
            404,
            "model `gpt-9` does not exist",
            ErrorKind::BadRequest,
            1,
        ),
        (503, "overloaded", ErrorKind::Server, 4),
    ];
    for wire in [Wire::OpenAi, Wire::Anthropic] {
        for (status, msg, kind, tries) in cases {
            let mut script = Script::default();
            script.rules.push(Rule {
                reply: Reply::error(status, msg),
                ..Rule::default()
            });
            let server = ScriptedServer::start(script).unwrap();
            let e = backend(&server, wire, false)
                .complete(&request(), &mut |_| {})
                .unwrap_err();
            assert_eq!(e.kind, kind, "{wire:?} {status}");
            assert_eq!(e.status, Some(status));
            assert_eq!(server.count(), tries, "{wire:?} {status}");
            let shown = e.to_string();
            assert!(shown.contains(msg), "{shown}");
            assert!(shown.contains(" — "), "says what to do: {shown}");
        }
    }
}

#[test]
fn timeouts_and_refused_connections_are_classified() {
    let mut script = Script::default();
    script.rules.push(Rule {
        reply: Reply {
            delay_ms: 1500,
            ..Reply::text("late")
        },
        ..Rule::default()
    });
    let server = ScriptedServer::start(script).unwrap();
    let mut o = HttpOptions::new(&server.openai_base());
    o.timeout = Duration::from_millis(300);
    o.max_retries = 1;
    o.backoff = Duration::from_millis(1);
    let e = HttpBackend::new(Wire::OpenAi, o)
        .complete(&request(), &mut |_| {})
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert_eq!(server.count(), 2);

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut o = HttpOptions::new(&format!("http://127.0.0.1:{port}/v1"));
    o.max_retries = 0;
    let e = HttpBackend::new(Wire::OpenAi, o)
        .complete(&request(), &mut |_| {})
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Network, "{e}");
}

#[test]
fn malformed_streams_are_protocol_errors_not_panics() {
    let mut junk: &[u8] = b"data: {not json\n\n";
    let e = agentops_llm::api::parse_openai_stream(&mut junk, &mut |_| {}).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol);
    let mut cut: &[u8] = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{}}}\n\n";
    let e = agentops_llm::api::parse_anthropic_stream(&mut cut, &mut |_| {}).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Network, "{e}");
    let e = agentops_llm::api::parse_openai(&json!({"nope": 1})).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol);
}
