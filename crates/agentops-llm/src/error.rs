//! Model-call errors, classified so the runner (and a person) knows what to do.

use std::time::Duration;

/// What kind of failure a call ended in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// 401/403: the key is missing, wrong or lacks access.
    Auth,
    /// 429: too many requests or tokens; retried with backoff.
    RateLimit,
    /// The prompt does not fit the model's context window.
    ContextOverflow,
    /// 400/404/422: the request itself is wrong (model name, parameters).
    BadRequest,
    /// 5xx or an overloaded provider; retried with backoff.
    Server,
    /// No answer in time; retried with backoff.
    Timeout,
    /// Could not connect (DNS, refused, TLS).
    Network,
    /// The answer was not in the wire format expected.
    Protocol,
    /// Configuration: a backend string, a missing key variable, a command
    /// that cannot start.
    Config,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Auth => "auth",
            ErrorKind::RateLimit => "rate_limit",
            ErrorKind::ContextOverflow => "context_overflow",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Server => "server",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Network => "network",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Config => "config",
        }
    }

    /// Worth trying again after a pause.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimit | ErrorKind::Server | ErrorKind::Timeout | ErrorKind::Network
        )
    }

    fn advice(self) -> &'static str {
        match self {
            ErrorKind::Auth => {
                "check that the key's environment variable (llm.*_key_env) is set and valid for this endpoint"
            }
            ErrorKind::RateLimit => {
                "the provider is rate-limiting: wait, lower parallelism, or raise your quota"
            }
            ErrorKind::ContextOverflow => {
                "the prompt is too long for the model: lower the agent's context budget, shorten the prompt, or use a model with a larger window"
            }
            ErrorKind::BadRequest => {
                "the request was refused: check the model name in the agent's `backend` and the endpoint URL"
            }
            ErrorKind::Server => "the provider failed; try again later",
            ErrorKind::Timeout => "no answer in time: raise llm.timeout_s or try again",
            ErrorKind::Network => {
                "could not reach the endpoint: check llm.*_base_url and the network"
            }
            ErrorKind::Protocol => {
                "the endpoint did not answer in the expected wire format: check that the base URL points at the right API"
            }
            ErrorKind::Config => "fix the configuration named above",
        }
    }
}

/// A failed model call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} error{}: {message} — {}", kind.as_str(), status.map(|s| format!(" (HTTP {s})")).unwrap_or_default(), kind.advice())]
pub struct LlmError {
    pub kind: ErrorKind,
    pub status: Option<u16>,
    pub message: String,
    /// What the provider asked us to wait (`Retry-After`).
    pub retry_after: Option<Duration>,
}

impl LlmError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Classifies an HTTP error answer from its status and body.
    pub fn from_http(status: u16, body: &str, retry_after: Option<Duration>) -> Self {
        let lower = body.to_ascii_lowercase();
        let overflow = lower.contains("context_length_exceeded")
            || lower.contains("prompt is too long")
            || lower.contains("maximum context length")
            || lower.contains("context window");
        let kind = match status {
            401 | 403 => ErrorKind::Auth,
            429 => ErrorKind::RateLimit,
            408 => ErrorKind::Timeout,
            413 => ErrorKind::ContextOverflow,
            400..=499 if overflow => ErrorKind::ContextOverflow,
            400..=499 => ErrorKind::BadRequest,
            _ => ErrorKind::Server,
        };
        // Providers put the human message at error.message.
        let message = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| {
                v.pointer("/error/message")
                    .and_then(|m| m.as_str())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| body.chars().take(500).collect());
        Self {
            kind,
            status: Some(status),
            message: agentops_core::redact::redact(&message).into_owned(),
            retry_after,
        }
    }
}
