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
pub mod error;
pub mod pricing;
pub mod replay;
pub mod scripted;
pub mod types;

pub use api::{HttpBackend, HttpOptions, Wire};
pub use command::{CommandBackend, Harness};
pub use error::{ErrorKind, LlmError};
pub use pricing::{Price, PriceTable};
pub use replay::ReplayBackend;
pub use types::{Message, Part, Request, Response, Role, ToolSpec};

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
    Command { harness: Harness },
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
                harness: match rest {
                    "claude" => Harness::Claude,
                    "codex" => Harness::Codex,
                    other => Harness::Argv(split_argv(other)?),
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
        BackendSpec::Command { harness } => Ok(Box::new(CommandBackend {
            harness: harness.clone(),
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

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Token usage of one call or a sum of calls, cache tokens included in
/// `input_tokens`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// All prompt tokens: uncached + cache reads + cache writes.
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Prompt tokens served from the cache (part of `input_tokens`).
    pub cache_read_tokens: u64,
    /// Prompt tokens written to the cache (part of `input_tokens`).
    pub cache_creation_tokens: u64,
}

fn num(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

impl Usage {
    /// From an Anthropic `usage` object (Messages API, Claude Code streams and
    /// transcripts), where `input_tokens` excludes cache reads and writes.
    /// Also accepts the camelCase `modelUsage` form of Claude Code results.
    pub fn from_anthropic(v: &Value) -> Self {
        let (uncached, read, write, out) = if v.get("inputTokens").is_some() {
            (
                num(v, "inputTokens"),
                num(v, "cacheReadInputTokens"),
                num(v, "cacheCreationInputTokens"),
                num(v, "outputTokens"),
            )
        } else {
            (
                num(v, "input_tokens"),
                num(v, "cache_read_input_tokens"),
                num(v, "cache_creation_input_tokens"),
                num(v, "output_tokens"),
            )
        };
        Self {
            input_tokens: uncached + read + write,
            output_tokens: out,
            cache_read_tokens: read,
            cache_creation_tokens: write,
        }
    }

    /// From an OpenAI-style `usage` object (chat completions' `prompt_tokens`
    /// with `prompt_tokens_details.cached_tokens`, the Responses API's
    /// `input_tokens` with `input_tokens_details.cached_tokens`, or Codex's
    /// `cached_input_tokens`), where cached tokens are part of the input.
    pub fn from_openai(v: &Value) -> Self {
        let input = v
            .get("input_tokens")
            .or_else(|| v.get("prompt_tokens"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let output = v
            .get("output_tokens")
            .or_else(|| v.get("completion_tokens"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let cached = v
            .get("cached_input_tokens")
            .and_then(Value::as_u64)
            .or_else(|| {
                v.get("prompt_tokens_details")
                    .or_else(|| v.get("input_tokens_details"))
                    .and_then(|d| d.get("cached_tokens"))
                    .and_then(Value::as_u64)
            })
            .unwrap_or(0);
        Self {
            input_tokens: input,
            output_tokens: output,
            cache_read_tokens: cached.min(input),
            cache_creation_tokens: 0,
        }
    }

    /// Adds another usage to this one.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_creation_tokens += other.cache_creation_tokens;
    }

    /// Prompt tokens neither read from nor written to the cache.
    pub fn uncached_input(&self) -> u64 {
        self.input_tokens
            .saturating_sub(self.cache_read_tokens)
            .saturating_sub(self.cache_creation_tokens)
    }

    /// Input plus output.
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }

    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    #[test]
    fn anthropic_input_excludes_cache_and_is_normalised() {
        let u = Usage::from_anthropic(&json!({
            "input_tokens": 2311, "cache_creation_input_tokens": 12044,
            "cache_read_input_tokens": 0, "output_tokens": 61
        }));
        assert_eq!(u.input_tokens, 2311 + 12044);
        assert_eq!(u.cache_creation_tokens, 12044);
        assert_eq!(u.uncached_input(), 2311);
        let camel = Usage::from_anthropic(&json!({
            "inputTokens": 2429, "outputTokens": 275,
            "cacheReadInputTokens": 12044, "cacheCreationInputTokens": 12446
        }));
        assert_eq!(camel.input_tokens, 2429 + 12044 + 12446);
        assert_eq!(camel.cache_read_tokens, 12044);
    }

    #[test]
    fn openai_and_codex_input_already_include_cache() {
        let codex = Usage::from_openai(&json!({
            "input_tokens": 24763, "cached_input_tokens": 19840, "output_tokens": 1122
        }));
        assert_eq!(codex.input_tokens, 24763);
        assert_eq!(codex.cache_read_tokens, 19840);
        assert_eq!(codex.uncached_input(), 24763 - 19840);
        let chat = Usage::from_openai(&json!({
            "prompt_tokens": 100, "completion_tokens": 7,
            "prompt_tokens_details": { "cached_tokens": 64 }
        }));
        assert_eq!(
            chat,
            Usage {
                input_tokens: 100,
                output_tokens: 7,
                cache_read_tokens: 64,
                cache_creation_tokens: 0
            }
        );
    }
}
