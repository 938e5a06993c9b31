//! The provider-neutral shape of a model call: what the runner sends and what
//! comes back, whichever wire format carries it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// One piece of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    Text {
        text: String,
    },
    /// The model asks for a tool.
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    /// What a tool answered (in a user message).
    ToolResult {
        tool_use_id: String,
        content: String,
        #[serde(default)]
        is_error: bool,
    },
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Part>,
}

impl Message {
    pub fn user(text: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: vec![Part::Text { text: text.into() }],
        }
    }

    /// The message's text parts, joined.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for p in &self.content {
            if let Part::Text { text } = p {
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(text);
            }
        }
        out
    }
}

/// A tool the model may call, with a JSON Schema for its input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub input_schema: Value,
}

/// One model request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub model: String,
    pub system: String,
    pub messages: Vec<Message>,
    #[serde(default)]
    pub tools: Vec<ToolSpec>,
    pub max_tokens: u32,
    #[serde(default)]
    pub temperature: Option<f64>,
}

impl Request {
    /// The request's identity: SHA-256 over its canonical JSON (model,
    /// system, messages, tools, parameters). Two requests with the same key
    /// ask the same question; the runner answers a key it has recorded from
    /// the journal instead of paying for it again.
    ///
    /// The hash is taken over the request as the journal would store it
    /// (redacted with the built-in rules; see [`Self::key_redacted`]), so a
    /// conversation rebuilt from recorded (redacted) answers has the same
    /// keys as the one that was recorded.
    pub fn key(&self) -> String {
        self.key_redacted(agentops_core::redact::builtin())
    }

    /// [`Self::key`] over the request redacted with `redactor`: the rules
    /// the journal that records the answers uses. Redaction is idempotent,
    /// so redacting a live request and a replayed one gives the same text.
    pub fn key_redacted(&self, redactor: &agentops_core::redact::Redactor) -> String {
        use sha2::Digest;
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        redactor.redact_json(&mut v);
        let mut h = sha2::Sha256::new();
        canonical(&v, &mut h);
        agentops_core::ids::hex(&h.finalize())
    }
}

/// Feeds `v` to `h` with object keys sorted, so a key never depends on map
/// order.
fn canonical(v: &Value, h: &mut sha2::Sha256) {
    use sha2::Digest;
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            h.update(b"{");
            for k in keys {
                h.update(serde_json::to_string(k).unwrap_or_default().as_bytes());
                h.update(b":");
                canonical(&m[k], h);
                h.update(b",");
            }
            h.update(b"}");
        }
        Value::Array(a) => {
            h.update(b"[");
            for x in a {
                canonical(x, h);
                h.update(b",");
            }
            h.update(b"]");
        }
        other => h.update(other.to_string().as_bytes()),
    }
}

/// What the model answered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The provider's response id (e.g. `chatcmpl-…`, `msg_…`).
    #[serde(default)]
    pub id: String,
    /// The model that answered (may be more specific than the one asked).
    #[serde(default)]
    pub model: String,
    pub content: Vec<Part>,
    /// Why it stopped: `end_turn`, `tool_use`, `max_tokens`, …
    #[serde(default)]
    pub stop_reason: String,
    #[serde(default)]
    pub usage: Usage,
    /// Cost the backend itself reported (command harnesses), in USD.
    #[serde(default)]
    pub reported_cost_usd: Option<f64>,
}

impl Response {
    /// The text parts, joined.
    pub fn text(&self) -> String {
        Message {
            role: Role::Assistant,
            content: self.content.clone(),
        }
        .text()
    }

    /// The tool calls asked for, in order.
    pub fn tool_uses(&self) -> Vec<(&str, &str, &Value)> {
        self.content
            .iter()
            .filter_map(|p| match p {
                Part::ToolUse { id, name, input } => Some((id.as_str(), name.as_str(), input)),
                _ => None,
            })
            .collect()
    }

    /// This response as the assistant's message in the conversation.
    pub fn as_message(&self) -> Message {
        Message {
            role: Role::Assistant,
            content: self.content.clone(),
        }
    }
}

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
    use serde_json::json;

    fn req() -> Request {
        Request {
            model: "m".into(),
            system: "s".into(),
            messages: vec![Message::user("hi")],
            tools: vec![],
            max_tokens: 100,
            temperature: None,
        }
    }

    #[test]
    fn key_is_stable_and_sensitive() {
        let a = req();
        assert_eq!(a.key(), req().key());
        assert_eq!(a.key().len(), 64);
        let mut b = req();
        b.messages.push(Message::user("again"));
        assert_ne!(a.key(), b.key());
        let mut c = req();
        c.max_tokens = 101;
        assert_ne!(a.key(), c.key());
    }

    #[test]
    fn a_conversation_rebuilt_from_redacted_answers_has_the_same_key() {
        // What the model said, live, and as the journal gives it back.
        let said = "the key is sk-ant-api03-boIRoL3u6aHwnMztVuaP_coUNEhEkk_iqq8vH2BzNZV45pFCiRcDCajhDieQjEJ_Bq8F80ymm3T207gmhZRnFyy5r2xJ7AA and DLJ9YV5cC6ZKPmuMEGj9dCgZ51vTfGPlcpTCCHHN";
        let mut answer = json!({"content": [{"type": "text", "text": said},
            {"type": "tool_use", "id": "Kq3ZxW8vB1nT6yR0pL2mJ5hG9dF4sA7c", "name": "t", "input": {}}]});
        agentops_core::redact::redact_json(&mut answer);
        let replayed: Vec<Part> = serde_json::from_value(answer["content"].clone()).unwrap();
        // The opaque tool-call id came back verbatim; the secret did not.
        assert!(
            matches!(&replayed[1], Part::ToolUse { id, .. } if id == "Kq3ZxW8vB1nT6yR0pL2mJ5hG9dF4sA7c")
        );
        assert!(
            !serde_json::to_string(&replayed)
                .unwrap()
                .contains("boIRoL3u6")
        );
        let next = |content: Vec<Part>| {
            let mut r = req();
            r.messages.push(Message {
                role: Role::Assistant,
                content,
            });
            r
        };
        let live = next(vec![
            Part::Text { text: said.into() },
            Part::ToolUse {
                id: "Kq3ZxW8vB1nT6yR0pL2mJ5hG9dF4sA7c".into(),
                name: "t".into(),
                input: json!({}),
            },
        ]);
        assert_eq!(live.key(), next(replayed).key());
    }

    #[test]
    fn key_ignores_object_key_order() {
        let mut a = req();
        a.messages[0].content.push(Part::ToolUse {
            id: "1".into(),
            name: "t".into(),
            input: serde_json::from_str(r#"{"a":1,"b":2}"#).unwrap(),
        });
        let mut b = req();
        b.messages[0].content.push(Part::ToolUse {
            id: "1".into(),
            name: "t".into(),
            input: serde_json::from_str(r#"{"b":2,"a":1}"#).unwrap(),
        });
        assert_eq!(a.key(), b.key());
        let _ = json!({});
    }
}

#[cfg(test)]
mod usage_tests {
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
