//! A scripted model server on loopback: speaks the OpenAI chat completions
//! and Anthropic Messages wire formats, plain and streamed (SSE), and the
//! OpenAI Responses API streamed (what Codex speaks), answers
//! from a script, and records every request it receives.
//!
//! It stands in for a hosted model in tests, benchmarks and `agentops demo`;
//! nothing else in agentops knows it is not the real thing. A rule is chosen
//! by what the request contains and by its *turn* (how many assistant
//! messages the conversation already holds), so the same request always gets
//! the same answer — which is what makes resumed runs checkable.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A tool call the scripted model makes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScriptedCall {
    pub name: String,
    #[serde(default)]
    pub input: Value,
}

/// What the scripted model answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub tool_calls: Vec<ScriptedCall>,
    /// Answer with this HTTP error status instead (429, 500, 401, 400 …).
    #[serde(default)]
    pub status: Option<u16>,
    /// The error's message (with `status`).
    #[serde(default)]
    pub error: Option<String>,
    /// `Retry-After` seconds sent with an error.
    #[serde(default)]
    pub retry_after_s: Option<f64>,
    /// Wait this long before answering.
    #[serde(default)]
    pub delay_ms: u64,
    /// Usage to report; by default about a token per 4 characters.
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_tokens: Option<u64>,
}

impl Reply {
    pub fn text(t: impl Into<String>) -> Self {
        Self {
            text: t.into(),
            ..Self::default()
        }
    }

    pub fn tool(name: &str, input: Value) -> Self {
        Self {
            tool_calls: vec![ScriptedCall {
                name: name.into(),
                input,
            }],
            ..Self::default()
        }
    }

    pub fn error(status: u16, message: &str) -> Self {
        Self {
            status: Some(status),
            error: Some(message.into()),
            ..Self::default()
        }
    }
}

/// When a reply applies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Every one of these must occur in the request's text (system prompt,
    /// messages, tool inputs and results).
    #[serde(default)]
    pub contains: Vec<String>,
    /// None of these may occur.
    #[serde(default)]
    pub not_contains: Vec<String>,
    /// The conversation's turn: assistant messages already in the request.
    #[serde(default)]
    pub turn: Option<usize>,
    /// Use this rule at most this many times, then fall through.
    #[serde(default)]
    pub times: Option<usize>,
    pub reply: Reply,
}

/// Rules in order; the first that applies answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// When no rule applies (default: a short text answer).
    #[serde(default)]
    pub fallback: Option<Reply>,
    /// The shape of response and tool-call ids.
    #[serde(default)]
    pub id_style: IdStyle,
}

/// Shapes of the ids a server gives responses and tool calls: providers'
/// prefixed ids, or what other OpenAI-compatible servers give (llama.cpp's
/// 32 random letters and digits, UUIDs, numbers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdStyle {
    #[default]
    Provider,
    Opaque,
    Uuid,
    Numeric,
}

/// What a reply's ids are made from.
#[derive(Debug, Clone, Copy)]
struct Ids {
    style: IdStyle,
    /// The reply's number (1-based order of arrival).
    n: usize,
    turn: usize,
}

/// Deterministic pseudo-random bytes for an id.
fn id_bytes(seed: &[usize]) -> [u8; 16] {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = [0u8; 16];
    for (k, chunk) in out.chunks_mut(8).enumerate() {
        for v in seed.iter().chain(std::iter::once(&k)) {
            h ^= *v as u64;
            h = h.wrapping_mul(0x0100_0000_01b3).rotate_left(29) ^ 0xff51_afd7_ed55_8ccd;
        }
        chunk.copy_from_slice(&h.to_be_bytes());
    }
    out
}

fn styled_id(style: IdStyle, provider: String, seed: &[usize]) -> String {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let b = id_bytes(seed);
    match style {
        IdStyle::Provider => provider,
        IdStyle::Opaque => {
            let mut b2 = id_bytes(&[seed, &[7]].concat()).to_vec();
            b2.extend_from_slice(&b);
            b2.iter()
                .take(32)
                .map(|x| ALNUM[*x as usize % ALNUM.len()] as char)
                .collect()
        }
        IdStyle::Uuid => {
            let h = agentops_core::ids::hex(&b);
            format!(
                "{}-{}-4{}-a{}-{}",
                &h[0..8],
                &h[8..12],
                &h[13..16],
                &h[17..20],
                &h[20..32]
            )
        }
        IdStyle::Numeric => (u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
            % 10_000_000_000)
            .to_string(),
    }
}

impl Script {
    pub fn rule(mut self, contains: &[&str], turn: Option<usize>, reply: Reply) -> Self {
        self.rules.push(Rule {
            contains: contains.iter().map(|s| (*s).to_owned()).collect(),
            turn,
            reply,
            ..Rule::default()
        });
        self
    }
}

/// One request the server received.
#[derive(Debug, Clone, Serialize)]
pub struct Received {
    /// 1-based order of arrival.
    pub n: usize,
    pub path: String,
    /// `openai`, `anthropic`, `responses` (the OpenAI Responses API) or
    /// `embeddings`.
    pub api: &'static str,
    pub stream: bool,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    pub turn: usize,
    /// The id of the answer (`chatcmpl-N` / `msg_N`); errors have none.
    pub reply_id: Option<String>,
    pub status: u16,
    /// When it arrived, since the server started.
    pub at: Duration,
}

struct Shared {
    started: std::time::Instant,
    script: Script,
    uses: Vec<usize>,
    received: Vec<Received>,
}

/// The running server; stops when dropped.
pub struct ScriptedServer {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for ScriptedServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl ScriptedServer {
    /// Starts on an ephemeral loopback port.
    pub fn start(script: Script) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Mutex::new(Shared {
            started: std::time::Instant::now(),
            uses: vec![0; script.rules.len()],
            script,
            received: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (sh, st) = (shared.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(c) = conn {
                    // Answers are written in parts: without this a client's
                    // delayed ACK costs 40 ms a request.
                    let _ = c.set_nodelay(true);
                    let sh = sh.clone();
                    std::thread::spawn(move || {
                        let _ = serve(c, &sh);
                    });
                }
            }
        });
        Ok(Self { addr, shared, stop })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The OpenAI-compatible base URL (`…/v1`).
    pub fn openai_base(&self) -> String {
        format!("{}/v1", self.url())
    }

    /// Every request received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.shared
            .lock()
            .map(|s| s.received.clone())
            .unwrap_or_default()
    }

    /// Time since the server started (the clock of [`Received::at`]).
    pub fn elapsed(&self) -> Duration {
        self.shared
            .lock()
            .map(|s| s.started.elapsed())
            .unwrap_or_default()
    }

    /// How many requests arrived.
    pub fn count(&self) -> usize {
        self.shared.lock().map(|s| s.received.len()).unwrap_or(0)
    }

    /// Replaces the script (counts of rule uses restart).
    pub fn set_script(&self, script: Script) {
        if let Ok(mut s) = self.shared.lock() {
            s.uses = vec![0; script.rules.len()];
            s.script = script;
        }
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// Dimensions of the scripted server's embeddings unless the request asks.
pub const EMBEDDING_DIMS: usize = 256;

/// Words the scripted embedding leaves out.
const EMBED_STOPWORDS: &[&str] = &[
    "the", "and", "for", "with", "that", "this", "from", "are", "was", "were", "has", "have",
    "had", "not", "but", "its", "our", "they", "them", "their", "you", "your", "when", "what",
    "which", "who", "how", "all", "any", "can", "will", "would", "into", "out", "one", "each",
    "every", "after", "before", "then", "than", "there", "here", "only", "also",
];

/// The scripted server's embedding of `text`: deterministic, lexical (its
/// words, lowercased, common words left out, a trailing `s`/`ed`/`ing` cut,
/// hashed into `dims` buckets, each word counted once), unit length. It
/// exercises the plumbing; it knows no synonyms.
pub fn hashed_embedding(text: &str, dims: usize) -> Vec<f32> {
    let mut v = vec![0f32; dims.max(1)];
    let mut seen = std::collections::HashSet::new();
    for w in text.split(|c: char| !c.is_alphanumeric()) {
        let w = w.to_lowercase();
        if w.chars().count() < 3 || EMBED_STOPWORDS.contains(&w.as_str()) || !seen.insert(w.clone())
        {
            continue;
        }
        let stem = ["ing", "ed", "s"]
            .iter()
            .find_map(|suf| w.strip_suffix(suf).filter(|s| s.len() >= 3))
            .unwrap_or(&w);
        // FNV-1a: stable across runs and platforms.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in stem.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        let len = v.len();
        v[(h % len as u64) as usize] += if h >> 63 == 0 { 1.0 } else { -1.0 };
    }
    let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|a| *a /= norm);
    }
    v
}

/// One HTTP/1.1 request as the loopback test servers read it (header names
/// lowercased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Reads the next request of a keep-alive connection (its body by
/// `content-length`); `None` when the peer closed the connection. Blank lines
/// between requests are skipped.
pub fn read_request(r: &mut impl BufRead) -> std::io::Result<Option<HttpRequest>> {
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let path = parts.next().unwrap_or("").to_owned();
    let mut headers = Vec::new();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 {
            return Ok(None);
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_owned());
            if k == "content-length" {
                len = v.parse().unwrap_or(0);
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(Some(HttpRequest {
        method,
        path,
        headers,
        body,
    }))
}

fn serve(stream: TcpStream, shared: &Mutex<Shared>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    while let Some(HttpRequest {
        method,
        path,
        headers,
        body,
    }) = read_request(&mut reader)?
    {
        if method != "POST" {
            respond(&mut out, 200, "application/json", &[], b"{\"ok\":true}")?;
            continue;
        }
        // `/v1/messages?beta=true` is Claude Code's form.
        let route = path.split('?').next().unwrap_or(&path);
        let api = if route.ends_with("/embeddings") {
            "embeddings"
        } else if route.ends_with("/messages") {
            "anthropic"
        } else if route.ends_with("/responses") {
            "responses"
        } else {
            "openai"
        };
        let Ok(req) = serde_json::from_slice::<Value>(&body) else {
            respond(
                &mut out,
                400,
                "application/json",
                &[],
                br#"{"error":{"message":"body is not JSON","type":"invalid_request_error"}}"#,
            )?;
            continue;
        };
        let stream = req["stream"].as_bool().unwrap_or(false);
        let turn = match req["messages"].as_array() {
            Some(m) => m.iter().filter(|m| m["role"] == "assistant").count(),
            // The Responses API: the model's earlier turns are `input` items
            // (its messages, and its tool calls when it said nothing).
            None => responses_turn(&req["input"]),
        };
        let text = request_text(&req);
        let (reply, n, style) = {
            let mut s = shared
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?;
            let n = s.received.len() + 1;
            let mut chosen = None;
            for i in 0..s.script.rules.len() {
                let r = &s.script.rules[i];
                let ok = r.contains.iter().all(|c| text.contains(c.as_str()))
                    && !r.not_contains.iter().any(|c| text.contains(c.as_str()))
                    && r.turn.is_none_or(|t| t == turn)
                    && r.times.is_none_or(|t| s.uses[i] < t);
                if ok {
                    s.uses[i] += 1;
                    chosen = Some(s.script.rules[i].reply.clone());
                    break;
                }
            }
            let reply = chosen
                .or_else(|| s.script.fallback.clone())
                .unwrap_or_else(|| Reply::text("Done."));
            let status = reply.status.unwrap_or(200);
            let style = s.script.id_style;
            let at = s.started.elapsed();
            s.received.push(Received {
                n,
                path: path.clone(),
                api,
                stream,
                headers,
                body: req.clone(),
                turn,
                reply_id: (status < 300).then(|| reply_id(api, n, style)),
                status,
                at,
            });
            (reply, n, s.script.id_style)
        };
        if reply.delay_ms > 0 {
            std::thread::sleep(Duration::from_millis(reply.delay_ms));
        }
        if let Some(status) = reply.status.filter(|s| *s >= 300) {
            let msg = reply
                .error
                .clone()
                .unwrap_or_else(|| "scripted error".into());
            let body = if api == "anthropic" {
                json!({"type": "error", "error": {"type": anthropic_error_type(status), "message": msg}})
            } else {
                json!({"error": {"message": msg, "type": "scripted_error", "code": if status == 400 && msg.contains("context") { "context_length_exceeded" } else { "" }}})
            };
            let mut extra = Vec::new();
            if let Some(s) = reply.retry_after_s {
                extra.push(("retry-after".to_owned(), format!("{s}")));
            }
            respond(
                &mut out,
                status,
                "application/json",
                &extra,
                body.to_string().as_bytes(),
            )?;
            continue;
        }
        if api == "embeddings" {
            let inputs: Vec<String> = match &req["input"] {
                Value::String(t) => vec![t.clone()],
                Value::Array(a) => a
                    .iter()
                    .map(|t| t.as_str().unwrap_or("").to_owned())
                    .collect(),
                _ => Vec::new(),
            };
            let dims = req["dimensions"]
                .as_u64()
                .map_or(EMBEDDING_DIMS, |d| d as usize);
            let data: Vec<Value> = inputs
                .iter()
                .enumerate()
                .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": hashed_embedding(t, dims)}))
                .collect();
            let tokens: usize = inputs.iter().map(|t| t.len().div_ceil(4)).sum();
            let body = json!({"object": "list", "data": data, "model": req["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}});
            respond(
                &mut out,
                200,
                "application/json",
                &[],
                body.to_string().as_bytes(),
            )?;
            continue;
        }
        let model = req["model"].as_str().unwrap_or("scripted").to_owned();
        let input = reply
            .input_tokens
            .unwrap_or_else(|| (text.len() as u64 / 4).max(1));
        let output = reply.output_tokens.unwrap_or_else(|| {
            ((reply.text.len() + 40 * reply.tool_calls.len()) as u64 / 4).max(1)
        });
        let cached = reply.cache_read_tokens.unwrap_or(0).min(input);
        let id = reply_id(api, n, style);
        let ids = Ids { style, n, turn };
        let payload = match (api, stream) {
            ("anthropic", false) => {
                anthropic_plain(&id, &model, &reply, ids, input, output, cached).to_string()
            }
            ("anthropic", true) => anthropic_sse(&id, &model, &reply, ids, input, output, cached),
            ("responses", _) => responses_sse(&id, &model, &reply, ids, input, output, cached),
            (_, false) => openai_plain(&id, &model, &reply, ids, input, output, cached).to_string(),
            (_, true) => openai_sse(&id, &model, &reply, ids, input, output, cached),
        };
        let ctype = if stream || api == "responses" {
            "text/event-stream"
        } else {
            "application/json"
        };
        respond(&mut out, 200, ctype, &[], payload.as_bytes())?;
    }
    Ok(())
}

fn reply_id(api: &str, n: usize, style: IdStyle) -> String {
    let provider = if api == "anthropic" {
        format!("msg_scripted_{n}")
    } else {
        format!("chatcmpl-scripted-{n}")
    };
    styled_id(style, provider, &[n, 0])
}

fn anthropic_error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// Writes one HTTP/1.1 response.
pub fn respond(
    out: &mut impl Write,
    status: u16,
    ctype: &str,
    extra: &[(String, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\n",
        if status < 300 { "OK" } else { "Error" },
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(body)?;
    out.flush()
}

/// Every string in the request body, joined: what `contains` is matched on.
fn request_text(v: &Value) -> String {
    fn walk(v: &Value, out: &mut String) {
        match v {
            Value::String(s) => {
                out.push_str(s);
                out.push('\n');
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(m) => m.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut s = String::new();
    walk(v, &mut s);
    s
}

fn call_id(prefix: &str, ids: Ids, i: usize) -> String {
    styled_id(
        ids.style,
        format!("{prefix}_{}_{i}", ids.turn),
        &[ids.n, ids.turn, i, 1],
    )
}

fn openai_plain(
    id: &str,
    model: &str,
    r: &Reply,
    ids: Ids,
    input: u64,
    output: u64,
    cached: u64,
) -> Value {
    let calls: Vec<Value> = r
        .tool_calls
        .iter()
        .enumerate()
        .map(|(i, c)| json!({"id": call_id("call", ids, i), "type": "function", "function": {"name": c.name, "arguments": c.input.to_string()}}))
        .collect();
    let mut msg = json!({"role": "assistant", "content": if r.text.is_empty() { Value::Null } else { json!(r.text) }});
    if !calls.is_empty() {
        msg["tool_calls"] = Value::Array(calls);
    }
    json!({
        "id": id, "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "message": msg, "finish_reason": if r.tool_calls.is_empty() { "stop" } else { "tool_calls" }}],
        "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output,
                  "prompt_tokens_details": {"cached_tokens": cached}}
    })
}

fn pieces(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars.chunks(24).map(|c| c.iter().collect()).collect()
}

fn openai_sse(
    id: &str,
    model: &str,
    r: &Reply,
    ids: Ids,
    input: u64,
    output: u64,
    cached: u64,
) -> String {
    let mut out = String::new();
    let mut ev = |v: Value| out.push_str(&format!("data: {v}\n\n"));
    let chunk = |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    ev(chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    ));
    for p in pieces(&r.text) {
        ev(chunk(json!({"content": p}), Value::Null));
    }
    for (i, c) in r.tool_calls.iter().enumerate() {
        ev(chunk(
            json!({"tool_calls": [{"index": i, "id": call_id("call", ids, i), "type": "function", "function": {"name": c.name, "arguments": ""}}]}),
            Value::Null,
        ));
        for p in pieces(&c.input.to_string()) {
            ev(chunk(
                json!({"tool_calls": [{"index": i, "function": {"arguments": p}}]}),
                Value::Null,
            ));
        }
    }
    ev(chunk(
        json!({}),
        json!(if r.tool_calls.is_empty() {
            "stop"
        } else {
            "tool_calls"
        }),
    ));
    ev(
        json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [],
              "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output,
                        "prompt_tokens_details": {"cached_tokens": cached}}}),
    );
    out.push_str("data: [DONE]\n\n");
    out
}

/// How many turns the model has had in a Responses API `input`: each run of
/// its items (messages, tool calls) between others counts once.
fn responses_turn(input: &Value) -> usize {
    let mut turns = 0;
    let mut in_turn = false;
    for item in input.as_array().into_iter().flatten() {
        let model = item["role"] == "assistant"
            || matches!(
                item["type"].as_str(),
                Some("function_call" | "custom_tool_call" | "local_shell_call" | "reasoning")
            );
        if model && !in_turn {
            turns += 1;
        }
        in_turn = model;
    }
    turns
}

/// The OpenAI Responses API's stream (what Codex speaks): the output items
/// (a message, then function calls), then `response.completed` with usage.
fn responses_sse(
    id: &str,
    model: &str,
    r: &Reply,
    ids: Ids,
    input: u64,
    output: u64,
    cached: u64,
) -> String {
    let mut out = String::new();
    let mut ev = |v: Value| {
        let kind = v["type"].as_str().unwrap_or("").to_owned();
        out.push_str(&format!("event: {kind}\ndata: {v}\n\n"));
    };
    let resp_id = format!("resp_{id}");
    ev(
        json!({"type": "response.created", "response": {"id": resp_id, "object": "response",
        "status": "in_progress", "model": model, "output": []}}),
    );
    let mut items = Vec::new();
    if !r.text.is_empty() {
        let item_id = format!("msg_{id}");
        let index = items.len();
        ev(
            json!({"type": "response.output_item.added", "output_index": index,
            "item": {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []}}),
        );
        for p in pieces(&r.text) {
            ev(
                json!({"type": "response.output_text.delta", "item_id": item_id, "output_index": index,
                "content_index": 0, "delta": p}),
            );
        }
        let item = json!({"id": item_id, "type": "message", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": r.text, "annotations": []}]});
        ev(json!({"type": "response.output_item.done", "output_index": index, "item": item}));
        items.push(item);
    }
    for (i, c) in r.tool_calls.iter().enumerate() {
        let index = items.len();
        let item = json!({"id": format!("fc_{id}_{i}"), "type": "function_call", "status": "completed",
            "call_id": call_id("call", ids, i), "name": c.name, "arguments": c.input.to_string()});
        ev(json!({"type": "response.output_item.added", "output_index": index, "item": item}));
        ev(json!({"type": "response.output_item.done", "output_index": index, "item": item}));
        items.push(item);
    }
    ev(
        json!({"type": "response.completed", "response": {"id": resp_id, "object": "response",
        "status": "completed", "model": model, "output": items,
        "usage": {"input_tokens": input, "output_tokens": output, "total_tokens": input + output,
            "input_tokens_details": {"cached_tokens": cached},
            "output_tokens_details": {"reasoning_tokens": 0}}}}),
    );
    out
}

fn anthropic_blocks(r: &Reply, ids: Ids) -> Vec<Value> {
    let mut blocks = Vec::new();
    if !r.text.is_empty() {
        blocks.push(json!({"type": "text", "text": r.text}));
    }
    for (i, c) in r.tool_calls.iter().enumerate() {
        blocks.push(json!({"type": "tool_use", "id": call_id("toolu", ids, i), "name": c.name, "input": c.input}));
    }
    blocks
}

fn anthropic_plain(
    id: &str,
    model: &str,
    r: &Reply,
    ids: Ids,
    input: u64,
    output: u64,
    cached: u64,
) -> Value {
    json!({
        "id": id, "type": "message", "role": "assistant", "model": model,
        "content": anthropic_blocks(r, ids),
        "stop_reason": if r.tool_calls.is_empty() { "end_turn" } else { "tool_use" },
        "stop_sequence": null,
        "usage": {"input_tokens": input - cached, "output_tokens": output,
                  "cache_read_input_tokens": cached, "cache_creation_input_tokens": 0}
    })
}

fn anthropic_sse(
    id: &str,
    model: &str,
    r: &Reply,
    ids: Ids,
    input: u64,
    output: u64,
    cached: u64,
) -> String {
    let mut out = String::new();
    let mut ev = |name: &str, v: Value| out.push_str(&format!("event: {name}\ndata: {v}\n\n"));
    ev(
        "message_start",
        json!({"type": "message_start", "message": {
        "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": input - cached, "output_tokens": 1,
                  "cache_read_input_tokens": cached, "cache_creation_input_tokens": 0}}}),
    );
    ev("ping", json!({"type": "ping"}));
    for (i, b) in anthropic_blocks(r, ids).into_iter().enumerate() {
        if b["type"] == "text" {
            ev(
                "content_block_start",
                json!({"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}}),
            );
            for p in pieces(b["text"].as_str().unwrap_or_default()) {
                ev(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": p}}),
                );
            }
        } else {
            ev(
                "content_block_start",
                json!({"type": "content_block_start", "index": i, "content_block": {"type": "tool_use", "id": b["id"], "name": b["name"], "input": {}}}),
            );
            for p in pieces(&b["input"].to_string()) {
                ev(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": i, "delta": {"type": "input_json_delta", "partial_json": p}}),
                );
            }
        }
        ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": i}),
        );
    }
    ev(
        "message_delta",
        json!({"type": "message_delta",
        "delta": {"stop_reason": if r.tool_calls.is_empty() { "end_turn" } else { "tool_use" }, "stop_sequence": null},
        "usage": {"output_tokens": output}}),
    );
    ev("message_stop", json!({"type": "message_stop"}));
    out
}
