//! The HTTP side: what a request must carry (token, Host, Origin, CSRF),
//! the routes, and the hyper loop that feeds them.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use agentops_api::guard::{is_loopback_host, same_secret as same};

use crate::state::State;
use crate::{actions, html, pages};

/// The largest form a POST may send.
const MAX_BODY: usize = 64 * 1024;

/// `agentops ui` settings.
#[derive(Debug, Clone)]
pub struct UiOptions {
    pub addr: SocketAddr,
    /// Every request must carry it: `?token=`, the cookie set from that, or
    /// `Authorization: Bearer`.
    pub token: String,
    /// Bound beyond loopback (`--bind`): any `Host` is accepted.
    pub public: bool,
    /// The `agentops` binary, for the actions that start a run's process
    /// (resume); `None`: those actions say how to do it by hand.
    pub exe: Option<std::path::PathBuf>,
}

/// A request as the routes see it.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Decoded query pairs.
    pub query: Vec<(String, String)>,
    /// Header names lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The query parameter `name`, empty values as absent.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// A form field of a urlencoded POST body.
    pub fn form(&self, name: &str) -> Option<String> {
        parse_query(&String::from_utf8_lossy(&self.body))
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    fn cookie(&self, name: &str) -> Option<&str> {
        self.header("cookie")?.split(';').find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == name).then_some(v)
        })
    }
}

/// A response as the routes make it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn html(body: String) -> Self {
        Self::new(200, "text/html; charset=utf-8", body.into_bytes())
    }

    pub fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Self {
        Self {
            status,
            content_type,
            headers: Vec::new(),
            body,
        }
    }

    pub fn text(status: u16, text: &str) -> Self {
        Self::new(
            status,
            "text/plain; charset=utf-8",
            format!("{text}\n").into_bytes(),
        )
    }

    pub fn json(v: &serde_json::Value) -> Self {
        Self::new(200, "application/json", v.to_string().into_bytes())
    }

    /// 303 See Other to `to` (after a POST, or to drop `?token=`).
    pub fn redirect(to: &str) -> Self {
        let mut r = Self::new(303, "text/plain; charset=utf-8", Vec::new());
        r.headers.push(("location", to.to_owned()));
        r
    }

    /// An error page: the message, in the dashboard's frame.
    pub fn error(state: &State, status: u16, title: &str, message: &str) -> Self {
        let mut r = Self::html(html::page(
            state,
            title,
            "",
            None,
            &format!(
                "<h1>{}</h1><p class=\"error\" id=\"error\">{}</p>",
                html::esc(title),
                html::esc(message)
            ),
        ));
        r.status = status;
        r
    }
}

/// `%xx` and `+` decoding of a query or form.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                    match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(v) => {
                            out.push(v);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// `%`-encoding for a query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The origins a page of this server has.
fn own_origins(state: &State, host: &str) -> Vec<String> {
    let port = state.addr.port();
    let mut o = vec![
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        format!("http://[::1]:{port}"),
    ];
    if state.opts.public && !host.is_empty() {
        o.push(format!("http://{host}"));
    }
    o
}

/// The cookie that carries the token: one per port, so two dashboards on
/// one machine do not log each other out.
pub fn cookie_name(state: &State) -> String {
    format!("agentops_ui_{}", state.addr.port())
}

/// Every request: Host, then the token; a POST also its Origin and CSRF
/// token; then the route.
pub fn handle(state: &State, req: &Request) -> Response {
    let host = req.header("host").unwrap_or("");
    if !state.opts.public && !is_loopback_host(host) {
        return Response::text(
            403,
            &format!("Host `{host}` is not this server (the dashboard answers on loopback only)"),
        );
    }
    let cookie = cookie_name(state);
    let from_query = req
        .param("token")
        .is_some_and(|t| same(t.as_bytes(), state.opts.token.as_bytes()));
    let authorised = from_query
        || req
            .cookie(&cookie)
            .is_some_and(|t| same(t.as_bytes(), state.opts.token.as_bytes()))
        || req
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .is_some_and(|t| same(t.as_bytes(), state.opts.token.as_bytes()));
    if !authorised {
        let mut r = Response::text(
            401,
            "the dashboard needs its token: open the URL `agentops ui` printed (it ends in ?token=…)",
        );
        r.headers
            .push(("www-authenticate", "Bearer realm=\"agentops\"".into()));
        return r;
    }
    if from_query && req.method == "GET" {
        // The token moves into an HttpOnly cookie and out of the address
        // bar (and of the history, and of any Referer).
        let rest: Vec<String> = req
            .query
            .iter()
            .filter(|(k, _)| k != "token")
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let to = if rest.is_empty() {
            req.path.clone()
        } else {
            format!("{}?{}", req.path, rest.join("&"))
        };
        let mut r = Response::redirect(&to);
        r.headers.push((
            "set-cookie",
            format!(
                "{cookie}={}; HttpOnly; SameSite=Strict; Path=/",
                state.opts.token
            ),
        ));
        return r;
    }
    if req.method == "POST" {
        let origin = req.header("origin").unwrap_or("");
        if !own_origins(state, host).iter().any(|o| o == origin) {
            return Response::text(
                403,
                &format!(
                    "a POST must come from this dashboard's own pages (Origin `{origin}` is not)"
                ),
            );
        }
        let sent = req.form("csrf").unwrap_or_default();
        if !same(sent.as_bytes(), state.csrf.as_bytes()) {
            return Response::text(
                403,
                "the form's CSRF token is missing or wrong: reload the page and try again",
            );
        }
        return actions::route(state, req);
    }
    if req.method != "GET" && req.method != "HEAD" {
        let mut r = Response::text(405, &format!("{} is not served here", req.method));
        r.headers.push(("allow", "GET, HEAD, POST".into()));
        return r;
    }
    pages::route(state, req)
}

fn to_hyper(r: Response, head: bool) -> http::Response<Full<Bytes>> {
    let len = r.body.len();
    let body = if head { Vec::new() } else { r.body };
    let mut out = http::Response::new(Full::new(Bytes::from(body)));
    *out.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = out.headers_mut();
    let mut put = |k: &'static str, v: &str| {
        if let Ok(v) = header::HeaderValue::from_str(v) {
            h.append(k, v);
        }
    };
    put("content-type", r.content_type);
    put("content-length", &len.to_string());
    put("cache-control", "no-store");
    put("x-content-type-options", "nosniff");
    // Not `no-referrer`: with it a browser sends `Origin: null` on a POST,
    // and the same-origin check could not tell our pages from any other.
    put("referrer-policy", "same-origin");
    put("x-frame-options", "DENY");
    put(
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    for (k, v) in &r.headers {
        put(k, v);
    }
    out
}

async fn read(req: http::Request<Incoming>) -> Result<Request, Response> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => {
            return Err(Response::text(
                413,
                &format!("the request body is over {} KB", MAX_BODY / 1024),
            ));
        }
    };
    Ok(Request {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parse_query(parts.uri.query().unwrap_or("")),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    })
}

pub async fn accept(listener: tokio::net::TcpListener, state: Arc<State>) -> Result<(), String> {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            // Out of file descriptors and the like: wait, keep serving.
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                let state = state.clone();
                async move {
                    let head = req.method() == http::Method::HEAD;
                    let r = match read(req).await {
                        Ok(r) => {
                            let st = state.clone();
                            tokio::task::spawn_blocking(move || handle(&st, &r))
                                .await
                                .unwrap_or_else(|_| {
                                    Response::text(500, "the page failed to render (a bug): see the server's output")
                                })
                        }
                        Err(r) => r,
                    };
                    Ok::<_, Infallible>(to_hyper(r, head))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
