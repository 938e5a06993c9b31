//! The HTTP backends: OpenAI-compatible chat completions and Anthropic
//! Messages, plain or streamed (SSE), with retries.

use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::error::{ErrorKind, LlmError};
use crate::types::{Part, Request, Response, Role};
use crate::{Backend, Usage};

/// How an HTTP backend connects.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// e.g. `https://api.openai.com/v1`, `http://localhost:11434/v1`,
    /// `https://api.anthropic.com`.
    pub base_url: String,
    /// The key, read by the caller from the environment variable named in
    /// config. Never logged.
    pub api_key: Option<String>,
    /// One attempt's time limit.
    pub timeout: Duration,
    /// Retries on 429, 5xx, timeouts and connection failures.
    pub max_retries: u32,
    /// First backoff; doubled each retry (with jitter), at most 60 s.
    pub backoff: Duration,
    /// Ask for a streamed (SSE) answer.
    pub stream: bool,
}

impl HttpOptions {
    pub fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: None,
            timeout: Duration::from_secs(600),
            max_retries: 4,
            backoff: Duration::from_millis(500),
            stream: true,
        }
    }
}

/// Which wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    OpenAi,
    Anthropic,
}

/// An HTTP model backend.
pub struct HttpBackend {
    wire: Wire,
    opts: HttpOptions,
    agent: ureq::Agent,
}

impl std::fmt::Debug for HttpBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpBackend")
            .field("wire", &self.wire)
            .field("base_url", &self.opts.base_url)
            .finish_non_exhaustive()
    }
}

/// An HTTP agent on rustls with the `ring` provider: no status-as-error,
/// 15 s to connect, `timeout` in all (OTLP export and other clients share it).
pub fn http_agent(timeout: Duration) -> ureq::Agent {
    install_crypto_provider();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(15).min(timeout)))
        .timeout_global(Some(timeout))
        .build()
        .into()
}

fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl HttpBackend {
    pub fn new(wire: Wire, opts: HttpOptions) -> Self {
        install_crypto_provider();
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_global(Some(opts.timeout))
            .build();
        Self {
            wire,
            opts,
            agent: config.into(),
        }
    }

    fn url(&self) -> String {
        match self.wire {
            Wire::OpenAi => format!("{}/chat/completions", self.opts.base_url),
            Wire::Anthropic => {
                if self.opts.base_url.ends_with("/v1") {
                    format!("{}/messages", self.opts.base_url)
                } else {
                    format!("{}/v1/messages", self.opts.base_url)
                }
            }
        }
    }

    fn body(&self, req: &Request) -> Value {
        match self.wire {
            Wire::OpenAi => openai_body(req, self.opts.stream, &self.opts.base_url),
            Wire::Anthropic => anthropic_body(req, self.opts.stream),
        }
    }

    fn once(&self, body: &[u8], on_text: &mut dyn FnMut(&str)) -> Result<Response, LlmError> {
        let mut rb = self
            .agent
            .post(&self.url())
            .header("content-type", "application/json");
        if self.opts.stream {
            rb = rb.header("accept", "text/event-stream");
        }
        if let Some(k) = &self.opts.api_key {
            rb = match self.wire {
                Wire::OpenAi => rb.header("authorization", &format!("Bearer {k}")),
                Wire::Anthropic => rb.header("x-api-key", k),
            };
        }
        if self.wire == Wire::Anthropic {
            rb = rb.header("anthropic-version", "2023-06-01");
        }
        let resp = rb.send(body).map_err(transport_error)?;
        let status = resp.status().as_u16();
        let retry_after = retry_after(resp.headers());
        let mut body = resp.into_body();
        if status >= 300 {
            let text = body
                .with_config()
                .limit(1 << 20)
                .read_to_string()
                .unwrap_or_default();
            return Err(LlmError::from_http(status, &text, retry_after));
        }
        let reader = body.with_config().limit(256 << 20).reader();
        if self.opts.stream {
            match self.wire {
                Wire::OpenAi => parse_openai_stream(reader, on_text),
                Wire::Anthropic => parse_anthropic_stream(reader, on_text),
            }
        } else {
            let mut text = String::new();
            BufReader::new(reader)
                .read_to_string(&mut text)
                .map_err(|e| io_error(&e))?;
            let v: Value = serde_json::from_str(&text).map_err(|e| {
                LlmError::new(ErrorKind::Protocol, format!("the answer is not JSON: {e}"))
            })?;
            let r = match self.wire {
                Wire::OpenAi => parse_openai(&v),
                Wire::Anthropic => parse_anthropic(&v),
            }?;
            let t = r.text();
            if !t.is_empty() {
                on_text(&t);
            }
            Ok(r)
        }
    }
}

impl Backend for HttpBackend {
    fn provider(&self) -> &str {
        match self.wire {
            Wire::OpenAi => "openai",
            Wire::Anthropic => "anthropic",
        }
    }

    fn offers_tools(&self) -> bool {
        true
    }

    fn complete(&self, req: &Request, on_text: &mut dyn FnMut(&str)) -> Result<Response, LlmError> {
        let body = serde_json::to_vec(&self.body(req))
            .map_err(|e| LlmError::new(ErrorKind::Protocol, e.to_string()))?;
        with_retries(self.opts.max_retries, self.opts.backoff, || {
            self.once(&body, on_text)
        })
    }
}

/// Runs `call` until it succeeds, fails for good, or `max_retries` retries
/// are spent; waits `Retry-After` when given, else exponential backoff with
/// jitter (at most 60 s).
pub fn with_retries(
    max_retries: u32,
    backoff: Duration,
    mut call: impl FnMut() -> Result<Response, LlmError>,
) -> Result<Response, LlmError> {
    let mut attempt = 0u32;
    loop {
        match call() {
            Ok(r) => return Ok(r),
            Err(e) if e.kind.retryable() && attempt < max_retries => {
                let exp = backoff.saturating_mul(1u32 << attempt.min(16));
                let wait = e.retry_after.unwrap_or_else(|| exp + jitter(exp / 2));
                std::thread::sleep(wait.min(Duration::from_secs(60)));
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

fn jitter(max: Duration) -> Duration {
    if max.is_zero() {
        return max;
    }
    let mut b = [0u8; 8];
    let r = getrandom::fill(&mut b).map_or(0, |()| u64::from_le_bytes(b));
    Duration::from_nanos(r % (max.as_nanos().min(u128::from(u64::MAX)) as u64).max(1))
}

fn retry_after(h: &ureq::http::HeaderMap) -> Option<Duration> {
    if let Some(ms) = h
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
    {
        return Some(Duration::from_secs_f64((ms / 1000.0).clamp(0.0, 3600.0)));
    }
    h.get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .map(|s| Duration::from_secs_f64(s.clamp(0.0, 3600.0)))
}

pub(crate) fn transport_error(e: ureq::Error) -> LlmError {
    match e {
        ureq::Error::Timeout(t) => LlmError::new(ErrorKind::Timeout, format!("timed out ({t})")),
        ureq::Error::Io(io) => io_error(&io),
        other => LlmError::new(ErrorKind::Network, other.to_string()),
    }
}

fn io_error(e: &std::io::Error) -> LlmError {
    let kind = if matches!(
        e.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    ) {
        ErrorKind::Timeout
    } else {
        ErrorKind::Network
    };
    LlmError::new(kind, e.to_string())
}

// ---------------------------------------------------------------- OpenAI --

/// The chat completions request body for `req`.
pub fn openai_body(req: &Request, stream: bool, base_url: &str) -> Value {
    let mut messages = Vec::new();
    if !req.system.is_empty() {
        messages.push(json!({"role": "system", "content": req.system}));
    }
    for m in &req.messages {
        match m.role {
            Role::User => {
                for p in &m.content {
                    if let Part::ToolResult {
                        tool_use_id,
                        content,
                        ..
                    } = p
                    {
                        messages.push(
                            json!({"role": "tool", "tool_call_id": tool_use_id, "content": content}),
                        );
                    }
                }
                let text = m.text();
                if !text.is_empty() {
                    messages.push(json!({"role": "user", "content": text}));
                }
            }
            Role::Assistant => {
                let text = m.text();
                let mut o = Map::new();
                o.insert("role".into(), json!("assistant"));
                o.insert(
                    "content".into(),
                    if text.is_empty() {
                        Value::Null
                    } else {
                        json!(text)
                    },
                );
                let calls: Vec<Value> = m
                    .content
                    .iter()
                    .filter_map(|p| match p {
                        Part::ToolUse { id, name, input } => Some(json!({
                            "id": id, "type": "function",
                            "function": {"name": name, "arguments": input.to_string()}
                        })),
                        _ => None,
                    })
                    .collect();
                if !calls.is_empty() {
                    o.insert("tool_calls".into(), Value::Array(calls));
                }
                messages.push(Value::Object(o));
            }
        }
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(req.model));
    body.insert("messages".into(), Value::Array(messages));
    if !req.tools.is_empty() {
        body.insert(
            "tools".into(),
            Value::Array(
                req.tools
                    .iter()
                    .map(|t| {
                        json!({"type": "function", "function": {
                            "name": t.name, "description": t.description, "parameters": t.input_schema
                        }})
                    })
                    .collect(),
            ),
        );
    }
    // OpenAI's own API wants max_completion_tokens (reasoning models refuse
    // max_tokens); compatible servers (vLLM, Ollama, llama.cpp) know max_tokens.
    let key = if base_url.contains("api.openai.com") {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    body.insert(key.into(), json!(req.max_tokens));
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if stream {
        body.insert("stream".into(), json!(true));
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Value::Object(body)
}

fn openai_stop(reason: &str) -> String {
    match reason {
        "stop" => "end_turn".into(),
        "tool_calls" | "function_call" => "tool_use".into(),
        "length" => "max_tokens".into(),
        other => other.into(),
    }
}

fn parse_args(args: &str) -> Value {
    if args.trim().is_empty() {
        return json!({});
    }
    serde_json::from_str(args).unwrap_or_else(|_| json!({ "_unparsed_arguments": args }))
}

/// A non-streamed chat completion.
pub fn parse_openai(v: &Value) -> Result<Response, LlmError> {
    let choice = v
        .pointer("/choices/0")
        .ok_or_else(|| LlmError::new(ErrorKind::Protocol, "the answer has no `choices[0]`"))?;
    let msg = &choice["message"];
    let mut content = Vec::new();
    if let Some(t) = msg["content"].as_str().filter(|t| !t.is_empty()) {
        content.push(Part::Text { text: t.to_owned() });
    }
    for c in msg["tool_calls"].as_array().into_iter().flatten() {
        content.push(Part::ToolUse {
            id: c["id"].as_str().unwrap_or_default().to_owned(),
            name: c
                .pointer("/function/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            input: parse_args(
                c.pointer("/function/arguments")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
            ),
        });
    }
    Ok(Response {
        id: v["id"].as_str().unwrap_or_default().to_owned(),
        model: v["model"].as_str().unwrap_or_default().to_owned(),
        content,
        stop_reason: openai_stop(choice["finish_reason"].as_str().unwrap_or("")),
        usage: v.get("usage").map(Usage::from_openai).unwrap_or_default(),
        reported_cost_usd: None,
    })
}

/// Calls `f(event, data)` for every server-sent event of `r`.
fn sse(
    r: impl Read,
    mut f: impl FnMut(&str, &str) -> Result<bool, LlmError>,
) -> Result<(), LlmError> {
    let mut event = String::new();
    let mut data = String::new();
    for line in BufReader::new(r).lines() {
        let line = line.map_err(|e| io_error(&e))?;
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            if !data.is_empty() && !f(&event, &data)? {
                return Ok(());
            }
            event.clear();
            data.clear();
        } else if let Some(d) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(d.strip_prefix(' ').unwrap_or(d));
        } else if let Some(e) = line.strip_prefix("event:") {
            event = e.trim().to_owned();
        }
    }
    if !data.is_empty() {
        f(&event, &data)?;
    }
    Ok(())
}

fn chunk_json(data: &str) -> Result<Value, LlmError> {
    serde_json::from_str(data).map_err(|e| {
        LlmError::new(
            ErrorKind::Protocol,
            format!(
                "a stream event is not JSON ({e}): {}",
                data.chars().take(200).collect::<String>()
            ),
        )
    })
}

fn stream_error(v: &Value) -> Option<LlmError> {
    let e = v.get("error")?;
    let msg = e["message"].as_str().unwrap_or("error in stream");
    let kind = match e["type"].as_str().unwrap_or("") {
        "rate_limit_error" => ErrorKind::RateLimit,
        "overloaded_error" | "api_error" | "server_error" => ErrorKind::Server,
        "invalid_request_error" => ErrorKind::BadRequest,
        "authentication_error" | "permission_error" => ErrorKind::Auth,
        _ => ErrorKind::Server,
    };
    Some(LlmError::new(
        kind,
        agentops_core::redact::redact(msg).into_owned(),
    ))
}

/// A streamed chat completion.
pub fn parse_openai_stream(
    r: impl Read,
    on_text: &mut dyn FnMut(&str),
) -> Result<Response, LlmError> {
    let mut out = Response::default();
    let mut text = String::new();
    // index → (id, name, arguments)
    let mut calls: Vec<(String, String, String)> = Vec::new();
    let mut done = false;
    sse(r, |_, data| {
        if data.trim() == "[DONE]" {
            done = true;
            return Ok(false);
        }
        let v = chunk_json(data)?;
        if let Some(e) = stream_error(&v) {
            return Err(e);
        }
        if out.id.is_empty()
            && let Some(id) = v["id"].as_str()
        {
            out.id = id.to_owned();
        }
        if out.model.is_empty()
            && let Some(m) = v["model"].as_str()
        {
            out.model = m.to_owned();
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            out.usage = Usage::from_openai(u);
        }
        if let Some(c) = v.pointer("/choices/0") {
            if let Some(t) = c.pointer("/delta/content").and_then(Value::as_str) {
                text.push_str(t);
                on_text(t);
            }
            for tc in c
                .pointer("/delta/tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let i = tc["index"].as_u64().unwrap_or(calls.len() as u64) as usize;
                while calls.len() <= i {
                    calls.push(Default::default());
                }
                if let Some(id) = tc["id"].as_str() {
                    calls[i].0 = id.to_owned();
                }
                if let Some(n) = tc.pointer("/function/name").and_then(Value::as_str) {
                    calls[i].1.push_str(n);
                }
                if let Some(a) = tc.pointer("/function/arguments").and_then(Value::as_str) {
                    calls[i].2.push_str(a);
                }
            }
            if let Some(f) = c["finish_reason"].as_str() {
                out.stop_reason = openai_stop(f);
            }
        }
        Ok(true)
    })?;
    if !done && out.stop_reason.is_empty() {
        return Err(LlmError::new(
            ErrorKind::Network,
            "the stream ended before the answer was complete",
        ));
    }
    if !text.is_empty() {
        out.content.push(Part::Text { text });
    }
    for (id, name, args) in calls {
        out.content.push(Part::ToolUse {
            id,
            name,
            input: parse_args(&args),
        });
    }
    Ok(out)
}

// ------------------------------------------------------------- Anthropic --

/// The Messages API request body for `req`.
pub fn anthropic_body(req: &Request, stream: bool) -> Value {
    let messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| {
            let content: Vec<Value> = m
                .content
                .iter()
                .filter_map(|p| match p {
                    Part::Text { text } if text.is_empty() => None,
                    Part::Text { text } => Some(json!({"type": "text", "text": text})),
                    Part::ToolUse { id, name, input } => {
                        Some(json!({"type": "tool_use", "id": id, "name": name, "input": input}))
                    }
                    Part::ToolResult {
                        tool_use_id,
                        content,
                        is_error,
                    } => Some(json!({
                        "type": "tool_result", "tool_use_id": tool_use_id,
                        "content": content, "is_error": is_error
                    })),
                })
                .collect();
            json!({"role": match m.role { Role::User => "user", Role::Assistant => "assistant" }, "content": content})
        })
        .collect();
    let mut body = Map::new();
    body.insert("model".into(), json!(req.model));
    body.insert("max_tokens".into(), json!(req.max_tokens));
    if !req.system.is_empty() {
        body.insert("system".into(), json!(req.system));
    }
    body.insert("messages".into(), Value::Array(messages));
    if !req.tools.is_empty() {
        body.insert(
            "tools".into(),
            Value::Array(
                req.tools
                    .iter()
                    .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
                    .collect(),
            ),
        );
    }
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if stream {
        body.insert("stream".into(), json!(true));
    }
    Value::Object(body)
}

fn anthropic_part(b: &Value) -> Option<Part> {
    match b["type"].as_str()? {
        "text" => Some(Part::Text {
            text: b["text"].as_str().unwrap_or_default().to_owned(),
        }),
        "tool_use" => Some(Part::ToolUse {
            id: b["id"].as_str().unwrap_or_default().to_owned(),
            name: b["name"].as_str().unwrap_or_default().to_owned(),
            input: b.get("input").cloned().unwrap_or_else(|| json!({})),
        }),
        _ => None,
    }
}

/// A non-streamed Messages answer.
pub fn parse_anthropic(v: &Value) -> Result<Response, LlmError> {
    let blocks = v["content"]
        .as_array()
        .ok_or_else(|| LlmError::new(ErrorKind::Protocol, "the answer has no `content` list"))?;
    Ok(Response {
        id: v["id"].as_str().unwrap_or_default().to_owned(),
        model: v["model"].as_str().unwrap_or_default().to_owned(),
        content: blocks.iter().filter_map(anthropic_part).collect(),
        stop_reason: v["stop_reason"].as_str().unwrap_or_default().to_owned(),
        usage: v
            .get("usage")
            .map(Usage::from_anthropic)
            .unwrap_or_default(),
        reported_cost_usd: None,
    })
}

/// A streamed Messages answer.
pub fn parse_anthropic_stream(
    r: impl Read,
    on_text: &mut dyn FnMut(&str),
) -> Result<Response, LlmError> {
    let mut out = Response::default();
    // index → (part, partial tool-input JSON)
    let mut blocks: Vec<(Part, String)> = Vec::new();
    let mut start_usage = Value::Null;
    let mut stopped = false;
    sse(r, |_, data| {
        let v = chunk_json(data)?;
        match v["type"].as_str().unwrap_or("") {
            "error" => {
                return Err(stream_error(&v)
                    .unwrap_or_else(|| LlmError::new(ErrorKind::Server, "error event in stream")));
            }
            "message_start" => {
                let m = &v["message"];
                out.id = m["id"].as_str().unwrap_or_default().to_owned();
                out.model = m["model"].as_str().unwrap_or_default().to_owned();
                start_usage = m["usage"].clone();
            }
            "content_block_start" => {
                let i = v["index"].as_u64().unwrap_or(blocks.len() as u64) as usize;
                let part = anthropic_part(&v["content_block"]).unwrap_or(Part::Text {
                    text: String::new(),
                });
                while blocks.len() <= i {
                    blocks.push((
                        Part::Text {
                            text: String::new(),
                        },
                        String::new(),
                    ));
                }
                blocks[i] = (part, String::new());
            }
            "content_block_delta" => {
                let i = v["index"].as_u64().unwrap_or(0) as usize;
                if let Some((part, partial)) = blocks.get_mut(i) {
                    let d = &v["delta"];
                    match (d["type"].as_str().unwrap_or(""), part) {
                        ("text_delta", Part::Text { text }) => {
                            let t = d["text"].as_str().unwrap_or_default();
                            text.push_str(t);
                            on_text(t);
                        }
                        ("input_json_delta", Part::ToolUse { .. }) => {
                            partial.push_str(d["partial_json"].as_str().unwrap_or_default());
                        }
                        _ => {}
                    }
                }
            }
            "message_delta" => {
                if let Some(s) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    out.stop_reason = s.to_owned();
                }
                if let (Some(u), Some(s)) = (v.get("usage"), start_usage.as_object_mut()) {
                    for (k, val) in u.as_object().into_iter().flatten() {
                        if !val.is_null() {
                            s.insert(k.clone(), val.clone());
                        }
                    }
                }
            }
            "message_stop" => {
                stopped = true;
                return Ok(false);
            }
            _ => {}
        }
        Ok(true)
    })?;
    if !stopped {
        return Err(LlmError::new(
            ErrorKind::Network,
            "the stream ended before message_stop",
        ));
    }
    out.usage = Usage::from_anthropic(&start_usage);
    for (mut part, partial) in blocks {
        if let Part::ToolUse { input, .. } = &mut part
            && !partial.is_empty()
        {
            *input = parse_args(&partial);
        }
        if matches!(&part, Part::Text { text } if text.is_empty()) {
            continue;
        }
        out.content.push(part);
    }
    Ok(out)
}
