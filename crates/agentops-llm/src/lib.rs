//! What every model backend and every stream ingester shares: token usage
//! normalised to one convention, and what it costs.
//!
//! The convention is OpenTelemetry GenAI's: `input_tokens` counts *every*
//! prompt token, cached or not; `cache_read_tokens` and
//! `cache_creation_tokens` say how many of them were read from or written to
//! the provider's prompt cache. Anthropic reports `input_tokens` *without* the
//! cache; OpenAI and Codex report it *with* cache reads. Normalise at the edge,
//! with [`Usage::from_anthropic`] and [`Usage::from_openai`].

pub mod pricing;

pub use pricing::{Price, PriceTable};

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
