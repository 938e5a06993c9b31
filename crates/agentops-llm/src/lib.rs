//! What every model backend and every stream ingester shares: token usage
//! normalised to one convention, and what it costs.
//!
//! The convention is OpenTelemetry GenAI's: `input_tokens` counts *every*
//! prompt token, cached or not; `cache_read_tokens` and
//! `cache_creation_tokens` say how many of them were read from or written to
//! the provider's prompt cache. Anthropic reports `input_tokens` *without* the
//! cache; OpenAI and Codex report it *with* cache reads. Normalise at the edge,
//! with [`Usage::from_anthropic`] and [`Usage::from_openai`].

pub mod api;
pub mod command;
pub mod embed;
pub mod error;
pub mod pricing;
pub mod replay;
pub mod scripted;
pub use agentops_protocol::model as types;

pub use agentops_protocol::Harness;
pub use agentops_protocol::model::{Message, Part, Request, Response, Role, ToolSpec, Usage};
pub use api::{HttpBackend, HttpOptions, Wire};
pub use command::{CommandBackend, Program};
pub use error::{ErrorKind, LlmError};
pub use pricing::{Price, PriceTable};
pub use replay::ReplayBackend;

/// A model backend: one request in, one response out (streaming text to
/// `on_text` as it arrives).
pub trait Backend: Send + Sync {
    /// The provider, as OpenTelemetry's `gen_ai.provider.name` has it
    /// (`openai`, `anthropic`, …).
    fn provider(&self) -> &str;
    /// Whether it runs agentops' built-in tools (API backends do; command
    /// harnesses bring their own).
    fn offers_tools(&self) -> bool;
    /// Whether a call acts beyond its answer (a harness edits files): such
    /// calls are never answered from the journal on resume.
    fn has_side_effects(&self) -> bool {
        false
    }
    fn complete(&self, req: &Request, on_text: &mut dyn FnMut(&str)) -> Result<Response, LlmError>;
}

/// A parsed `backend = "…"` string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendSpec {
    OpenAi { model: String },
    Anthropic { model: String },
    Command { program: Program },
    Replay { file: String },
}

impl BackendSpec {
    /// `openai:<model>`, `anthropic:<model>`, `command:claude`,
    /// `command:codex`, `command:<argv…>`, `replay:<file>`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (kind, rest) = s.split_once(':').ok_or_else(|| {
            format!("`{s}` is not a backend; use openai:<model>, anthropic:<model>, command:claude, command:codex, command:<argv>, or replay:<file>")
        })?;
        let rest = rest.trim();
        if rest.is_empty() {
            return Err(format!("`{s}`: nothing after `{kind}:`"));
        }
        Ok(match kind {
            "openai" => Self::OpenAi { model: rest.into() },
            "anthropic" => Self::Anthropic { model: rest.into() },
            "command" => Self::Command {
                program: match Harness::parse(rest) {
                    Some(h) => Program::Harness(h),
                    None => Program::Argv(split_argv(rest)?),
                },
            },
            "replay" => Self::Replay { file: rest.into() },
            other => {
                return Err(format!(
                    "unknown backend kind `{other}`; use openai, anthropic, command or replay"
                ));
            }
        })
    }

    /// The model name, when the spec names one.
    pub fn model(&self) -> Option<&str> {
        match self {
            Self::OpenAi { model } | Self::Anthropic { model } => Some(model),
            _ => None,
        }
    }

    /// Whether this backend runs agentops' built-in tools.
    pub fn offers_tools(&self) -> bool {
        !matches!(self, Self::Command { .. })
    }
}

/// Splits a command line on whitespace, honouring single and double quotes.
pub fn split_argv(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if quote.is_some() {
        return Err(format!("`{s}`: unclosed quote"));
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    if out.is_empty() {
        return Err("the command is empty".into());
    }
    Ok(out)
}

/// What a backend needs beyond its spec.
#[derive(Clone)]
pub struct BuildOptions<'a> {
    pub llm: &'a agentops_core::config::LlmConfig,
    /// Where command harnesses run (the run's worktree) and replay files
    /// are resolved.
    pub workdir: std::path::PathBuf,
    /// Reads an environment variable (the key's).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Agent-level overrides of the endpoint.
    pub base_url: Option<String>,
    pub key_env: Option<String>,
    /// For command harnesses: where their process groups are recorded.
    pub children_file: Option<std::path::PathBuf>,
}

/// Builds the backend `spec` names.
pub fn build(spec: &BackendSpec, o: &BuildOptions<'_>) -> Result<Box<dyn Backend>, LlmError> {
    let http = |wire: Wire,
                default_base: &str,
                default_env: &str|
     -> Result<Box<dyn Backend>, LlmError> {
        let base = o
            .base_url
            .clone()
            .unwrap_or_else(|| default_base.to_owned());
        let env_name = o.key_env.clone().unwrap_or_else(|| default_env.to_owned());
        let key = (o.env)(&env_name).filter(|k| !k.trim().is_empty());
        let local = base.starts_with("http://127.") || base.starts_with("http://localhost");
        if key.is_none() && !local {
            return Err(LlmError::new(
                ErrorKind::Auth,
                format!(
                    "`{env_name}` is not set: export the key in that variable (or point llm.*_key_env at another)"
                ),
            ));
        }
        let mut opts = HttpOptions::new(&base);
        opts.api_key = key;
        opts.timeout = std::time::Duration::from_secs(o.llm.timeout_s);
        opts.max_retries = u32::try_from(o.llm.max_retries).unwrap_or(4);
        opts.stream = o.llm.stream;
        Ok(Box::new(HttpBackend::new(wire, opts)))
    };
    match spec {
        BackendSpec::OpenAi { .. } => {
            http(Wire::OpenAi, &o.llm.openai_base_url, &o.llm.openai_key_env)
        }
        BackendSpec::Anthropic { .. } => http(
            Wire::Anthropic,
            &o.llm.anthropic_base_url,
            &o.llm.anthropic_key_env,
        ),
        BackendSpec::Command { program } => Ok(Box::new(CommandBackend {
            program: program.clone(),
            workdir: o.workdir.clone(),
            timeout: std::time::Duration::from_secs(o.llm.timeout_s),
            model: None,
            children_file: o.children_file.clone(),
        })),
        BackendSpec::Replay { file } => {
            let p = std::path::Path::new(file);
            let p = if p.is_absolute() {
                p.to_path_buf()
            } else {
                o.workdir.join(p)
            };
            Ok(Box::new(ReplayBackend::open(&p)?))
        }
    }
}
