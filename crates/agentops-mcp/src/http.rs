//! Streamable HTTP: the SDK's service behind a bearer token, with `Host`
//! and `Origin` checked first (DNS rebinding), served by hyper.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};

use crate::server::Handler;
use crate::state::State;

/// The largest request body: the same as a stdio line.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// The one path the server answers on.
pub const PATH: &str = "/mcp";

/// `--http` settings.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub addr: SocketAddr,
    /// Every request must carry `Authorization: Bearer <token>`.
    pub token: String,
    /// Bound beyond loopback (`--bind`): any `Host` is accepted (the token
    /// is then the only guard).
    pub public: bool,
}

type Body = BoxBody<Bytes, Infallible>;

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{text}\n"))).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The checks before the SDK sees a request: path, Host, Origin, token.
fn refuse(req: &Request<Incoming>, addr: SocketAddr, opts: &HttpOptions) -> Option<Response<Body>> {
    if req.uri().path() != PATH {
        return Some(plain(
            StatusCode::NOT_FOUND,
            &format!("agentops mcp answers on {PATH}"),
        ));
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !opts.public && !agentops_api::guard::is_loopback_host(host) {
        return Some(plain(
            StatusCode::FORBIDDEN,
            &format!("Host `{host}` is not this server (loopback only)"),
        ));
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let port = addr.port();
        let ours = [
            format!("http://127.0.0.1:{port}"),
            format!("http://localhost:{port}"),
            format!("http://[::1]:{port}"),
        ];
        if !ours.iter().any(|o| o == origin) {
            return Some(plain(
                StatusCode::FORBIDDEN,
                &format!("Origin `{origin}` may not call this server"),
            ));
        }
    }
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    if !agentops_api::guard::same_secret(token.as_bytes(), opts.token.as_bytes()) {
        let mut r = plain(
            StatusCode::UNAUTHORIZED,
            "a bearer token is required (Authorization: Bearer <token>, printed when the server started)",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"agentops\""),
        );
        return Some(r);
    }
    None
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    state: Arc<State>,
    opts: HttpOptions,
) -> Result<(), String> {
    let mut config = StreamableHttpServerConfig::default().with_max_request_body_bytes(MAX_BODY);
    config = if opts.public {
        config.disable_allowed_hosts()
    } else {
        config.with_allowed_hosts(["localhost", "127.0.0.1", "::1"])
    };
    let port = addr.port();
    config = config.with_allowed_origins([
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        format!("http://[::1]:{port}"),
    ]);
    let st = state.clone();
    let service = StreamableHttpService::new(
        move || Ok(Handler::new(st.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let opts = Arc::new(opts);
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
        let (svc, opts) = (service.clone(), opts.clone());
        tokio::spawn(async move {
            let handler = hyper::service::service_fn(move |req: Request<Incoming>| {
                let (svc, opts) = (svc.clone(), opts.clone());
                async move {
                    if let Some(r) = refuse(&req, addr, &opts) {
                        return Ok::<_, Infallible>(r);
                    }
                    Ok(svc.handle(req).await)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), handler)
                .await;
        });
    }
}

/// A fresh random token (256 bits, hex).
pub fn new_token() -> Result<String, String> {
    agentops_api::guard::new_token("the bearer token")
}
