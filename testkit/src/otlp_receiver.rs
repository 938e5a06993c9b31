//! A loopback OTLP/HTTP trace receiver for tests and the benchmark: it
//! accepts `POST /v1/traces` in protobuf or JSON, decodes the spans and
//! records them, and can be told to answer with an error status.

use std::io::BufReader;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use agentops_llm::scripted::{HttpRequest, read_request, respond};

use agentops_telemetry::otlp::{self, Decoded};

#[derive(Debug, Default)]
struct State {
    spans: Vec<Decoded>,
    requests: usize,
    bytes: usize,
    fail_with: Option<u16>,
    headers: Vec<(String, String)>,
    bad: usize,
}

/// A running receiver; stops when dropped.
#[derive(Debug)]
pub struct Receiver {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

fn lock(s: &Mutex<State>) -> MutexGuard<'_, State> {
    s.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Receiver {
    /// Listens on a free loopback port.
    pub fn start() -> std::io::Result<Self> {
        Self::start_on(0)
    }

    /// Listens on loopback `port` (0: any free one).
    pub fn start_on(port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (st, sp) = (st.clone(), sp.clone());
                std::thread::spawn(move || serve(conn, &st, &sp));
            }
        });
        Ok(Self {
            addr,
            state,
            stop,
            accept: Some(accept),
        })
    }

    /// The traces URL.
    pub fn url(&self) -> String {
        format!("http://{}/v1/traces", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every span received, in arrival order (duplicates kept).
    pub fn spans(&self) -> Vec<Decoded> {
        lock(&self.state).spans.clone()
    }

    /// How many spans arrived.
    pub fn span_count(&self) -> usize {
        lock(&self.state).spans.len()
    }

    /// Requests answered (accepted or not).
    pub fn requests(&self) -> usize {
        lock(&self.state).requests
    }

    /// Bytes of request bodies received.
    pub fn bytes(&self) -> usize {
        lock(&self.state).bytes
    }

    /// Requests whose body could not be decoded.
    pub fn bad_requests(&self) -> usize {
        lock(&self.state).bad
    }

    /// The headers of the last request (names lowercased).
    pub fn last_headers(&self) -> Vec<(String, String)> {
        lock(&self.state).headers.clone()
    }

    /// Answer every request with `status` (e.g. 503) instead of accepting it;
    /// `None` to accept again.
    pub fn fail_with(&self, status: Option<u16>) {
        lock(&self.state).fail_with = status;
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn serve(conn: TcpStream, state: &Mutex<State>, stop: &AtomicBool) {
    let _ = conn.set_nodelay(true);
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut r = BufReader::with_capacity(1 << 16, conn);
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let Ok(Some(HttpRequest { headers, body, .. })) = read_request(&mut r) else {
            return;
        };
        let json = headers
            .iter()
            .any(|(k, v)| k == "content-type" && v.starts_with("application/json"));
        let status = {
            let mut s = lock(state);
            s.requests += 1;
            s.headers = headers;
            match s.fail_with {
                Some(code) => code,
                None => {
                    let decoded = if json {
                        otlp::decode_json(&body)
                    } else {
                        otlp::decode_proto(&body)
                    };
                    match decoded {
                        Some(sp) => {
                            s.bytes += body.len();
                            s.spans.extend(sp);
                            200
                        }
                        None => {
                            s.bad += 1;
                            400
                        }
                    }
                }
            }
        };
        if respond(&mut out, status, "application/x-protobuf", &[], b"").is_err() {
            return;
        }
    }
}
