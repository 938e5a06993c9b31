//! OTLP/HTTP export from the journal, with a durable watermark per endpoint.
//!
//! The exporter reads events after its watermark, rebuilds the spans of the
//! runs and sessions those events belong to, and sends each span once: when
//! the event that completes it (`Span::done_seq`) passes the watermark. The
//! watermark moves only after the receiver accepted a batch, and batches are
//! cut only between spans completed by different events, so after a crash or
//! an outage the next export resumes exactly where the last accepted batch
//! ended. A lease in the store keeps two exporters of the same endpoint from
//! sending the same spans.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use agentops_core::RunId;
use agentops_store::{Journal, StoreError};

use crate::otlp::{self, Protocol, Resource};
use crate::span::{self, Builder, Span};

fn run_id(run: &str) -> Result<RunId, StoreError> {
    RunId::parse(run)
        .map_err(|e| StoreError::Internal(format!("run id {run:?} in the journal: {e}")))
}

/// Where and how to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The traces URL (`…/v1/traces`).
    pub endpoint: String,
    pub protocol: Protocol,
    pub headers: Vec<(String, String)>,
    pub resource: Resource,
    /// Spans per request.
    pub batch_spans: usize,
    /// Events read per pass.
    pub chunk_events: usize,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl ExportOptions {
    /// Defaults for `endpoint`: protobuf, 1,000 spans per request, 10 s.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            protocol: Protocol::Protobuf,
            headers: Vec::new(),
            resource: Resource::default(),
            batch_spans: 1_000,
            chunk_events: 100_000,
            timeout: Duration::from_secs(10),
        }
    }

    /// The watermark's name in the store: one per endpoint.
    pub fn watermark_name(&self) -> String {
        format!("otlp:{}", self.endpoint)
    }
}

/// The traces URL for an endpoint as `OTEL_EXPORTER_OTLP_ENDPOINT` gives it
/// (a base URL, to which `/v1/traces` is added) or as a full traces URL.
pub fn traces_url(endpoint: &str, is_base: bool) -> String {
    let e = endpoint.trim_end_matches('/');
    if is_base && !e.ends_with("/v1/traces") {
        format!("{e}/v1/traces")
    } else {
        e.to_owned()
    }
}

/// Parses `OTEL_EXPORTER_OTLP_HEADERS` (`k=v,k2=v2`, values percent-decoded).
pub fn parse_headers(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("header `{part}` is not KEY=VALUE"))?;
        let k = k.trim();
        if k.is_empty()
            || !k
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!("header name `{k}` is not a valid HTTP header name"));
        }
        out.push((k.to_owned(), percent_decode(v.trim())));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(h) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(h);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("journal: {0}")]
    Store(#[from] StoreError),
    /// The receiver could not be reached or answered with a retryable status.
    #[error("{endpoint}: {reason} ({pending} spans wait; they are sent when it answers)")]
    Unavailable {
        endpoint: String,
        reason: String,
        pending: usize,
    },
    /// The receiver refused the payload for good (4xx other than 408/429).
    #[error("{endpoint} refused the spans: HTTP {status}: {body}")]
    Refused {
        endpoint: String,
        status: u16,
        body: String,
    },
    #[error(
        "another exporter is sending to {0} (its lease renews while it runs); try again when it stops"
    )]
    Busy(String),
}

/// What one export pass did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Report {
    pub spans: usize,
    pub requests: usize,
    pub bytes: usize,
    /// The watermark after the pass.
    pub watermark: i64,
    /// Spans still open (running steps, live sessions) left for later.
    pub open_spans: usize,
}

/// How long a lease lasts without renewal.
const LEASE: Duration = Duration::from_secs(60);

fn lease_until() -> i64 {
    agentops_core::time::now_micros() + i64::try_from(LEASE.as_micros()).unwrap_or(i64::MAX)
}

/// An exporter for one endpoint, holding its lease while it lives.
pub struct Exporter<'j> {
    journal: &'j Journal,
    opts: ExportOptions,
    agent: ureq::Agent,
    owner: String,
    name: String,
    watermark: i64,
    /// Events of runs seen in this exporter's life, by run.
    /// A span builder per run followed, fed up to the last pass's end.
    cache: HashMap<String, Builder>,
}

impl std::fmt::Debug for Exporter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("endpoint", &self.opts.endpoint)
            .field("watermark", &self.watermark)
            .finish_non_exhaustive()
    }
}

impl<'j> Exporter<'j> {
    /// Claims the endpoint's lease.
    pub fn claim(journal: &'j Journal, opts: ExportOptions) -> Result<Self, ExportError> {
        let name = opts.watermark_name();
        let owner = format!(
            "{}-{}",
            std::process::id(),
            agentops_core::ids::Ulid::generate()
        );
        let now = agentops_core::time::now_micros();
        let watermark = journal
            .store()
            .claim_export(&name, &owner, now, lease_until())?
            .ok_or_else(|| ExportError::Busy(opts.endpoint.clone()))?;
        Ok(Self {
            journal,
            agent: agentops_llm::api::http_agent(opts.timeout),
            opts,
            owner,
            name,
            watermark,
            cache: HashMap::new(),
        })
    }

    /// The journal position exported so far.
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// Sends everything completed since the watermark. On an unreachable or
    /// failing receiver the watermark stays after the last accepted batch.
    pub fn pass(&mut self) -> Result<Report, ExportError> {
        let mut report = Report {
            watermark: self.watermark,
            ..Report::default()
        };
        loop {
            // Only positions and runs are needed here; each touched run is
            // read (slim, unparsed) and built once below.
            let chunk = self
                .journal
                .positions(self.watermark, self.opts.chunk_events)?;
            let Some(last) = chunk.last().map(|e| e.0) else {
                break;
            };
            let full = chunk.len() >= self.opts.chunk_events;
            // The runs this chunk touches, rebuilt whole.
            let mut runs: BTreeMap<String, i64> = BTreeMap::new();
            for (seq, run) in chunk {
                runs.entry(run).or_insert(seq);
            }
            let mut due: Vec<Span> = Vec::new();
            let mut open = 0;
            for (run, _) in runs {
                let built = match self.feed(&run, last)? {
                    // A finished run or session is taken whole; one still
                    // going keeps its builder for the next pass.
                    Some(b) if b.is_done() => b.finish(),
                    Some(b) => {
                        let spans = b.spans();
                        self.cache.insert(run, b);
                        spans
                    }
                    None => {
                        // The parsed read names the file and the malformed
                        // event.
                        let mut q = agentops_store::Query::run(run_id(&run)?);
                        q.max_seq = Some(last);
                        span::build(&run, &self.journal.read(&q)?)
                    }
                };
                for sp in built {
                    match sp.done_seq {
                        Some(d) if d > self.watermark && d <= last => due.push(sp),
                        None => open += 1,
                        _ => {}
                    }
                }
                if self.cache.len() > 64 {
                    self.cache.clear();
                }
            }
            report.open_spans = open;
            due.sort_by_key(|s| s.done_seq);
            let mut i = 0;
            while i < due.len() {
                // A batch ends between spans completed by different events.
                let mut j = (i + self.opts.batch_spans).min(due.len());
                while j < due.len() && j > i + 1 && due[j].done_seq == due[j - 1].done_seq {
                    j -= 1;
                }
                let batch: Vec<&Span> = due[i..j].iter().collect();
                let bytes = self.send(&batch, due.len() - i)?;
                // Everything up to this batch's last completing event is out;
                // the last batch of a chunk covers the whole chunk.
                let mark = if j == due.len() {
                    last
                } else {
                    due[j - 1].done_seq.unwrap_or(self.watermark)
                };
                self.advance(mark)?;
                report.spans += batch.len();
                report.requests += 1;
                report.bytes += bytes;
                i = j;
            }
            if due.is_empty() {
                self.advance(last)?;
            }
            report.watermark = self.watermark;
            if !full {
                break;
            }
        }
        Ok(report)
    }

    /// The builder of `run` fed with its events up to `last` (the cached one
    /// takes only what is new); `None` when an event does not parse.
    fn feed(&mut self, run: &str, last: i64) -> Result<Option<Builder>, ExportError> {
        let mut b = self.cache.remove(run).unwrap_or_else(|| Builder::new(run));
        let q = agentops_store::Query {
            after_seq: Some(b.last_seq()),
            max_seq: Some(last),
            ..agentops_store::Query::run(run_id(run)?)
        };
        let mut ok = true;
        self.journal.scan(&q, &mut |r| ok = ok && b.push_raw(r))?;
        Ok(ok.then_some(b))
    }

    fn advance(&mut self, seq: i64) -> Result<(), ExportError> {
        if seq <= self.watermark {
            return Ok(());
        }
        if !self
            .journal
            .store()
            .advance_export(&self.name, &self.owner, seq, lease_until())?
        {
            return Err(ExportError::Busy(self.opts.endpoint.clone()));
        }
        self.watermark = seq;
        Ok(())
    }

    fn send(&self, batch: &[&Span], pending: usize) -> Result<usize, ExportError> {
        let body = otlp::encode(self.opts.protocol, &self.opts.resource, batch);
        let mut req = self
            .agent
            .post(&self.opts.endpoint)
            .header("content-type", self.opts.protocol.content_type());
        for (k, v) in &self.opts.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let unavailable = |reason: String| ExportError::Unavailable {
            endpoint: self.opts.endpoint.clone(),
            reason,
            pending,
        };
        match req.send(&body[..]) {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                if (200..300).contains(&status) {
                    return Ok(body.len());
                }
                let text = resp
                    .body_mut()
                    .with_config()
                    .limit(4_096)
                    .read_to_string()
                    .unwrap_or_default();
                if status == 408 || status == 429 || status >= 500 {
                    Err(unavailable(format!("HTTP {status}")))
                } else {
                    Err(ExportError::Refused {
                        endpoint: self.opts.endpoint.clone(),
                        status,
                        body: text.chars().take(300).collect(),
                    })
                }
            }
            Err(e) => Err(unavailable(e.to_string())),
        }
    }

    /// Renews the lease while idle (for `--follow`).
    pub fn renew(&self) -> Result<(), ExportError> {
        if self.journal.store().advance_export(
            &self.name,
            &self.owner,
            self.watermark,
            lease_until(),
        )? {
            Ok(())
        } else {
            Err(ExportError::Busy(self.opts.endpoint.clone()))
        }
    }

    /// Exports until `stop` says so, polling every `poll`, backing off
    /// (1 s doubling to 30 s) while the receiver is unavailable. Calls
    /// `on_report` after each pass that sent something or failed.
    pub fn follow(
        &mut self,
        poll: Duration,
        stop: &dyn Fn() -> bool,
        on_report: &mut dyn FnMut(&Result<Report, ExportError>),
    ) -> Result<(), ExportError> {
        let mut backoff = Duration::from_secs(1);
        loop {
            let r = self.pass();
            let wait = match &r {
                Ok(rep) => {
                    backoff = Duration::from_secs(1);
                    if rep.spans > 0 {
                        on_report(&r);
                    }
                    poll
                }
                Err(ExportError::Unavailable { .. }) => {
                    on_report(&r);
                    let w = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    w
                }
                Err(_) => return r.map(|_| ()),
            };
            let until = Instant::now() + wait;
            while Instant::now() < until {
                if stop() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(50).min(wait));
            }
            self.renew()?;
        }
    }
}

impl Drop for Exporter<'_> {
    fn drop(&mut self) {
        let _ = self.journal.store().release_export(&self.name, &self.owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_urls() {
        assert_eq!(
            parse_headers("api_key=abc%3D%3D, x-team = core").unwrap(),
            vec![
                ("api_key".into(), "abc==".into()),
                ("x-team".into(), "core".into())
            ]
        );
        assert!(parse_headers("nokey").is_err());
        assert!(parse_headers("bad name=1").is_err());
        assert_eq!(
            traces_url("http://h:4318/", true),
            "http://h:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://h:4318/v1/traces", true),
            "http://h:4318/v1/traces"
        );
        assert_eq!(traces_url("http://h/custom", false), "http://h/custom");
    }
}

/// Resolves where to export: `--endpoint` >
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as given) >
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL) > `telemetry.endpoint`; the
/// protocol from `--protocol` > `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` /
/// `OTEL_EXPORTER_OTLP_PROTOCOL` > `telemetry.protocol`; headers from
/// `telemetry.headers`, then `OTEL_EXPORTER_OTLP_HEADERS` /
/// `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, then `--header` (later wins).
/// `Ok(None)` when nothing names an endpoint.
pub fn resolve(
    cfg: &agentops_core::config::TelemetryConfig,
    env: &dyn Fn(&str) -> Option<String>,
    endpoint: Option<&str>,
    protocol: Option<&str>,
    headers: &[String],
) -> Result<Option<ExportOptions>, String> {
    let env = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let url = match (
        endpoint,
        env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        env("OTEL_EXPORTER_OTLP_ENDPOINT"),
        &cfg.endpoint,
    ) {
        (Some(e), _, _, _) => traces_url(e, true),
        (None, Some(e), _, _) => traces_url(&e, false),
        (None, None, Some(e), _) => traces_url(&e, true),
        (None, None, None, Some(e)) => traces_url(e, true),
        (None, None, None, None) => return Ok(None),
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!(
            "endpoint `{url}` is not an http:// or https:// URL"
        ));
    }
    let proto_name = protocol
        .map(str::to_owned)
        .or_else(|| env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"))
        .or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_else(|| cfg.protocol.clone());
    let protocol = Protocol::parse(proto_name.trim()).ok_or_else(|| {
        format!(
            "protocol `{proto_name}` is not supported; use http/protobuf or http/json (gRPC is not offered: point at the collector's or backend's OTLP/HTTP port)"
        )
    })?;
    let mut hs: Vec<(String, String)> = cfg
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for var in [
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    ] {
        if let Some(v) = env(var) {
            hs.extend(parse_headers(&v).map_err(|e| format!("{var}: {e}"))?);
        }
    }
    for h in headers {
        hs.extend(parse_headers(h).map_err(|e| format!("--header {h}: {e}"))?);
    }
    // Later sources win for the same (case-insensitive) name.
    let mut merged: Vec<(String, String)> = Vec::new();
    for (k, v) in hs {
        merged.retain(|(m, _)| !m.eq_ignore_ascii_case(&k));
        merged.push((k, v));
    }
    let mut opts = ExportOptions::new(url);
    opts.protocol = protocol;
    opts.headers = merged;
    opts.resource.project = cfg.project.clone();
    Ok(Some(opts))
}

/// An exporter running in a thread beside an agent (`agentops run`): it
/// polls the journal with its own connection, so it never slows the run.
#[derive(Debug)]
pub struct Background {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<BackgroundReport>,
}

/// What a background exporter did in all.
#[derive(Debug, Clone, Default)]
pub struct BackgroundReport {
    pub endpoint: String,
    pub spans: usize,
    /// The last error, if the last pass failed (spans wait in the journal).
    pub error: Option<String>,
}

impl Background {
    /// Starts exporting; `open` opens the journal inside the thread.
    pub fn start(
        open: Box<dyn FnOnce() -> Result<Journal, StoreError> + Send>,
        opts: ExportOptions,
    ) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut rep = BackgroundReport {
                endpoint: opts.endpoint.clone(),
                ..BackgroundReport::default()
            };
            let journal = match open() {
                Ok(j) => j,
                Err(e) => {
                    rep.error = Some(e.to_string());
                    return rep;
                }
            };
            let mut exp = match Exporter::claim(&journal, opts) {
                Ok(x) => x,
                Err(e) => {
                    rep.error = Some(e.to_string());
                    return rep;
                }
            };
            let mut on = |r: &Result<Report, ExportError>| match r {
                Ok(x) => {
                    rep.spans += x.spans;
                    rep.error = None;
                }
                Err(e) => rep.error = Some(e.to_string()),
            };
            let _ = exp.follow(
                Duration::from_millis(500),
                &|| flag.load(Ordering::Relaxed),
                &mut on,
            );
            // A last pass for what the end of the run completed.
            match exp.pass() {
                Ok(x) => {
                    rep.spans += x.spans;
                    rep.error = None;
                }
                Err(e) => rep.error = Some(e.to_string()),
            }
            rep
        });
        Self { stop, handle }
    }

    /// Stops after a last pass and reports.
    pub fn finish(self) -> BackgroundReport {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}
