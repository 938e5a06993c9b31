//! Factor V — observability. Spans are derived from the journal (never
//! stored twice): [`span::build`] turns a run's or a session's events into
//! OpenTelemetry GenAI spans; [`view`] renders them and the metrics rollup
//! for the terminal; [`alerts`] computes `agentops status`; [`export`] sends
//! spans over OTLP/HTTP with a durable watermark; [`receiver`] is a loopback
//! OTLP receiver for tests and the benchmark.

pub mod alerts;
pub mod body;
pub mod export;
pub mod otlp;
pub mod span;
pub mod view;

pub use export::{ExportError, ExportOptions, Exporter, Report};
pub use otlp::{Protocol, Resource};
pub use span::{Span, SpanKind, build};
