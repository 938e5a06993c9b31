//! Every configuration key, declared once: its section, name, type, default,
//! range and doc. The section structs, their defaults, the parser's setters,
//! [`KEYS`], the commented template `init` writes and the table in
//! docs/configuration.md are all derived from the declarations below.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{AutoSync, FailMode, MemoryCommit, PriceOverride, Synchronous, Tokenizer};

/// What a key takes, beyond its type; the "allowed" text of errors and docs is
/// derived from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// A whole number of `unit` from `lo` to `hi`.
    Whole {
        unit: &'static str,
        lo: u64,
        hi: u64,
    },
    /// A number (`what`: "a fraction") from `lo` to `hi`; `note` follows.
    Number {
        what: &'static str,
        lo: f64,
        hi: f64,
        note: &'static str,
    },
    /// A number (`what`: "a number of days") strictly above `lo`.
    Above { what: &'static str, lo: f64 },
    /// Whatever the type takes and the key's check accepts, described.
    Text(&'static str),
}

impl Rule {
    /// What is allowed, in words.
    pub fn allowed(&self) -> String {
        match *self {
            Rule::Whole { unit: "", lo, hi } => {
                format!("a whole number, {lo} to {hi}")
            }
            Rule::Whole { unit, lo, hi } => format!("a whole number of {unit}, {lo} to {hi}"),
            Rule::Number { what, lo, hi, note } => format!("{what}, {lo} to {hi}{note}"),
            Rule::Above { what, lo } => format!("{what} above {lo}"),
            Rule::Text(t) => t.to_owned(),
        }
    }

    /// Whether the number `v` is within the rule (rules without a range
    /// take any).
    fn admits(&self, v: f64) -> bool {
        match *self {
            Rule::Whole { lo, hi, .. } => v.is_finite() && v >= lo as f64 && v <= hi as f64,
            Rule::Number { lo, hi, .. } => v.is_finite() && v >= lo && v <= hi,
            Rule::Above { lo, .. } => v.is_finite() && v > lo,
            Rule::Text(_) => true,
        }
    }
}

/// Why one key's value was refused.
pub(super) enum SetError {
    /// The value is not of the key's type (the span is in the error).
    Type(toml::de::Error),
    /// The value is of the right type but not allowed.
    Invalid(String),
}

/// A value a key can hold: how a later layer's value combines with an earlier
/// one, and the number a range applies to.
pub(super) trait Setting: Serialize + DeserializeOwned {
    /// A later layer's value replaces the earlier one (tables merge by name).
    fn merge(&mut self, later: Self)
    where
        Self: Sized,
    {
        *self = later;
    }
    /// The number a [`Rule`] range checks, if this is a number.
    fn number(&self) -> Option<f64> {
        None
    }
}

impl Setting for u64 {
    fn number(&self) -> Option<f64> {
        Some(*self as f64)
    }
}
impl Setting for u32 {
    fn number(&self) -> Option<f64> {
        Some(f64::from(*self))
    }
}
impl Setting for f64 {
    fn number(&self) -> Option<f64> {
        Some(*self)
    }
}
impl Setting for Option<f64> {
    fn number(&self) -> Option<f64> {
        *self
    }
}
impl Setting for bool {}
impl Setting for String {}
impl Setting for Option<String> {}
impl Setting for Vec<String> {}
impl Setting for BTreeMap<String, String> {}
impl Setting for BTreeMap<String, u64> {
    fn merge(&mut self, later: Self) {
        self.extend(later);
    }
}
impl Setting for Synchronous {}
impl Setting for MemoryCommit {}
impl Setting for AutoSync {}
impl Setting for FailMode {}
impl Setting for Tokenizer {}

/// One configuration key.
pub struct Key {
    /// The table: `store` in `store.url`.
    pub section: &'static str,
    /// The key in its table: `url`; `<model-prefix>` for `[prices]`.
    pub name: &'static str,
    pub rule: Rule,
    /// What it does, one line per template comment line.
    pub doc: &'static [&'static str],
    /// A value to show when the default is unset or empty.
    pub example: Option<&'static str>,
    /// The key's value in a configuration, as inline TOML; `None` when unset.
    pub value: fn(&super::Config) -> Option<String>,
    pub(super) set:
        fn(&mut super::Config, &str, toml::de::ValueDeserializer<'_>) -> Result<(), SetError>,
}

impl Key {
    /// `section.name`.
    pub fn dotted(&self) -> String {
        format!("{}.{}", self.section, self.name)
    }
}

/// Reads `v` as `T`, checks it and the key's range, and merges it into `slot`.
pub(super) fn set<T: Setting>(
    slot: &mut T,
    rule: Rule,
    check: fn(&mut T) -> Result<(), String>,
    v: toml::de::ValueDeserializer<'_>,
) -> Result<(), SetError> {
    let mut t = T::deserialize(v).map_err(SetError::Type)?;
    check(&mut t).map_err(SetError::Invalid)?;
    if let Some(n) = t.number()
        && !rule.admits(n)
    {
        return Err(SetError::Invalid(format!(
            "{n} is out of range; allowed: {}",
            rule.allowed()
        )));
    }
    slot.merge(t);
    Ok(())
}

/// A value rendered as inline TOML (`"full"`, `[]`, `{ a = 1 }`).
pub(super) fn render<T: Serialize>(v: &T) -> Option<String> {
    match toml::Value::try_from(v) {
        Ok(toml::Value::Table(t)) if t.is_empty() => Some("{}".into()),
        Ok(toml::Value::Table(t)) => Some(format!(
            "{{ {} }}",
            t.iter()
                .map(|(k, v)| format!("{} = {v}", toml::Value::String(k.clone())))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Ok(v) => Some(v.to_string()),
        Err(_) => None,
    }
}

fn any<T>(_: &mut T) -> Result<(), String> {
    Ok(())
}

macro_rules! config_table {
    (
        $(
            $(#[doc = $sdoc:literal])*
            [$section:ident] $Struct:ident {
                $(
                    $(#[doc = $doc:literal])*
                    $field:ident : $ty:ty = $default:expr, $rule:expr
                    $(, check $check:expr)?
                    $(, example $example:literal)?
                    ;
                )*
            }
        )*
    ) => {
        $(
            $(#[doc = $sdoc])*
            #[derive(Debug, Clone, PartialEq, Serialize)]
            pub struct $Struct {
                $( $(#[doc = $doc])* pub $field: $ty, )*
            }

            impl Default for $Struct {
                fn default() -> Self {
                    Self { $( $field: $default, )* }
                }
            }
        )*

        /// The sections in template order, with their doc.
        pub const SECTIONS: &[(&str, &[&str])] = &[ $( (stringify!($section), &[$($sdoc),*]), )* ];

        /// Every key this version understands.
        pub static KEYS: &[Key] = &[
            $( $(
                Key {
                    section: stringify!($section),
                    name: stringify!($field),
                    rule: $rule,
                    doc: &[$($doc),*],
                    example: config_table!(@opt $($example)?),
                    value: |cfg| render(&cfg.$section.$field),
                    set: |cfg, _name, v| {
                        let check: fn(&mut $ty) -> Result<(), String> = config_table!(@check $($check)?);
                        set(&mut cfg.$section.$field, $rule, check, v)
                    },
                },
            )* )*
            Key {
                section: "prices",
                name: "<model-prefix>",
                rule: Rule::Text("{ input = USD, output = USD, cache_read = USD, cache_write = USD } per million tokens"),
                doc: &[" Prices in USD per million tokens, by model-name prefix (the longest prefix", " wins), over the built-in table; cache prices default to the input price."],
                example: Some("{ input = 3.0, output = 12.0, cache_read = 0.3 }"),
                value: |_| None,
                set: |cfg, model, v| {
                    let mut price = PriceOverride { input: 0.0, output: 0.0, cache_read: None, cache_write: None };
                    set(&mut price, Rule::Text(""), check_price, v)?;
                    cfg.prices.insert(model.to_owned(), price);
                    Ok(())
                },
            },
        ];

        /// The resolved configuration.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        pub struct Config {
            $( pub $section: $Struct, )*
            /// `[prices]`: USD per million tokens by model-name prefix, over the
            /// checked-in table.
            pub prices: BTreeMap<String, PriceOverride>,
        }

        impl Default for Config {
            fn default() -> Self {
                Self { $( $section: $Struct::default(), )* prices: BTreeMap::new() }
            }
        }
    };
    (@opt) => { None };
    (@opt $e:literal) => { Some($e) };
    (@check) => { any };
    (@check $c:expr) => { $c };
}

impl Setting for PriceOverride {}

use super::checks::*;

config_table! {
    /// `[store]`: where the journal lives.
    [store] StoreConfig {
        /// Where the journal lives: a SQLite file path (relative to the work tree) or
        /// sqlite:// URL. Unset: <git-common-dir>/agentops/state.db. A postgres:// URL
        /// names a team store instead: this machine keeps its journal in the default
        /// file and forwards it there (docs/team.md); no password in the URL (PGPASSWORD
        /// or ~/.pgpass); ?sslmode=verify-full (or require: always verified) encrypts,
        /// with sslrootcert=CA.pem or PGSSLROOTCERT.
        url: Option<String> = None,
            Rule::Text("a SQLite file path, sqlite:// URL, or postgres://user@host:port/db (default: <git-common-dir>/agentops/state.db)"),
            check store_url, example "\"sqlite:///path/to/state.db\"";
        /// How long a writer waits for another process's lock, in milliseconds.
        busy_timeout_ms: u64 = 10_000, Rule::Whole { unit: "milliseconds", lo: 100, hi: 600_000 };
    }
    /// `[journal]`: durability of journal writes.
    [journal] JournalConfig {
        /// "full": every journal commit is fsynced (survives power loss).
        /// "normal": fsync at checkpoints only (survives a crash of agentops, not of the machine).
        synchronous: Synchronous = Synchronous::Full, Rule::Text("\"full\" or \"normal\"");
    }
    /// `[redaction]`: patterns added to the built-in rule set.
    [redaction] RedactionConfig {
        /// Regular expressions redacted in addition to the built-in rules (group 1, if
        /// present, is the secret; otherwise the whole match).
        extra_patterns: Vec<String> = Vec::new(), Rule::Text("a list of regular expressions"),
            check redaction_patterns, example "[\"acme_[0-9a-f]{32}\"]";
    }
    /// `[memory]`: how knowledge writes reach git.
    [memory] MemoryConfig {
        /// "auto": every memory write is a git commit. "off": write files only.
        commit: MemoryCommit = MemoryCommit::Auto, Rule::Text("\"auto\" or \"off\"");
        /// Commit memory writes to this branch instead of the current one (created from
        /// origin/<branch> when fetched, else HEAD, on first use; the work tree and index
        /// are not touched). `agentops sync` shares it through the remote.
        branch: Option<String> = None, Rule::Text("a branch name"),
            check branch_name, example "\"agentops/memory\"";
        /// Warn when an entry is larger than this many bytes (it is still written;
        /// search indexes its first 64 KiB).
        warn_bytes: u64 = 256 * 1024, Rule::Whole { unit: "bytes", lo: 1024, hi: 1 << 30 };
        /// Run `agentops sync` from the session hooks: "start" (SessionStart, before the
        /// briefing), "end" (SessionEnd, after the handoff), "both", or "off". Bounded by
        /// auto_sync_timeout_ms; a sync still going then finishes in the background.
        auto_sync: AutoSync = AutoSync::Off, Rule::Text("\"off\", \"start\", \"end\" or \"both\"");
        /// How long a session hook waits for its sync, in milliseconds.
        auto_sync_timeout_ms: u64 = 2_000, Rule::Whole { unit: "milliseconds", lo: 100, hi: 60_000 };
    }
    /// `[context]`: search ranking, packet budgets, model windows.
    [context] ContextConfig {
        /// The most tokens a context packet may use; the packet also never takes the
        /// whole context window past 40% (0.40 x window - tokens already in use).
        packet_max: u64 = 4_000, Rule::Whole { unit: "tokens", lo: 100, hi: 1_000_000 };
        /// The context window assumed when neither a flag nor the model tables say.
        window: u64 = 200_000, Rule::Whole { unit: "tokens", lo: 1_000, hi: 10_000_000 };
        /// Freshness of an entry halves every this many days.
        half_life_days: f64 = 90.0, Rule::Above { what: "a number of days", lo: 0.0 };
        /// How tokens are counted (changing it rebuilds the index).
        tokenizer: Tokenizer = Tokenizer::O200k, Rule::Text("\"o200k\" or \"cl100k\"");
        /// At most this many entries get their full text in a packet.
        full_entries: u64 = 5, Rule::Whole { unit: "", lo: 0, hi: 100 };
        /// Context windows by model-name prefix (longest prefix wins), over the built-in table.
        windows: BTreeMap<String, u64> = BTreeMap::new(),
            Rule::Text("a table of model-name prefix = tokens (1000 to 10000000), e.g. { \"claude-\" = 200000 }"),
            check window_sizes, example "{ \"claude-\" = 200000, \"gpt-4.1\" = 1047576 }";
        /// Expand each search with the distinctive words of its best hit
        /// (pseudo-relevance feedback: docs/factor-2-context.md, "Ranking").
        expansion: bool = true, Rule::Text("true or false");
        /// Vector search fused with the lexical ranking (off when empty): "openai:MODEL" calls
        /// an OpenAI-compatible /v1/embeddings API (embeddings_base_url); "model2vec:PATH" loads
        /// a local static-embedding model directory (model.safetensors + tokenizer.json).
        embeddings: String = String::new(),
            Rule::Text("\"\" (off), \"openai:MODEL\" or \"model2vec:PATH\""),
            check embeddings, example "\"openai:text-embedding-3-small\"";
        /// Base URL of the OpenAI-compatible embeddings API (default: llm.openai_base_url;
        /// Ollama: http://127.0.0.1:11434/v1).
        embeddings_base_url: Option<String> = None,
            Rule::Text("an http:// or https:// URL of an OpenAI-compatible API"),
            check optional_url, example "\"http://127.0.0.1:11434/v1\"";
        /// The NAME of the environment variable holding the embeddings API key (default:
        /// llm.openai_key_env; a server that needs no key works without it being set).
        embeddings_key_env: Option<String> = None,
            Rule::Text("the NAME of the environment variable holding the key"),
            check optional_env_var_name, example "\"OLLAMA_API_KEY\"";
        /// The longest a search waits for the query's embedding before ranking lexically.
        embeddings_timeout_ms: u64 = 1_500, Rule::Whole { unit: "milliseconds", lo: 50, hi: 60_000 };
    }
    /// `[policy]`: what harness hooks let an agent run and write (docs/factor-4-gates.md).
    [policy] PolicyConfig {
        /// Use the built-in deny list: force-push, reset --hard, git clean -fd/-fdx,
        /// rm -rf of / or ~, curl|wget piped to a shell, dropping databases, disk wipes.
        builtin_rules: bool = true, Rule::Text("true or false");
        /// Regular expressions of commands hooks deny, in addition.
        deny_commands: Vec<String> = Vec::new(), Rule::Text("a list of regular expressions"),
            check regexes, example "[\"\\\\bterraform\\\\s+destroy\\\\b\"]";
        /// Regular expressions of commands allowed even when a deny rule matches.
        allow_commands: Vec<String> = Vec::new(), Rule::Text("a list of regular expressions"),
            check regexes, example "[\"^git push --force origin scratch$\"]";
        /// Globs (relative to the work tree) writes must match; empty: anywhere in the project.
        write_scope: Vec<String> = Vec::new(), Rule::Text("a list of globs relative to the work tree"),
            example "[\"src/**\", \"tests/**\"]";
        /// When a PreToolUse hook fails internally or runs out of time: "open" lets the
        /// agent go on, "closed" denies the tool call.
        fail: FailMode = FailMode::Open, Rule::Text("\"open\" or \"closed\"");
    }
    /// `[hooks]`: `agentops hook claude|codex` inside a harness (docs/harness.md).
    [hooks] HooksConfig {
        /// Hard time limit of one hook event, in milliseconds (stop gates and handoff
        /// writes have their own).
        timeout_ms: u64 = 2_000, Rule::Whole { unit: "milliseconds", lo: 100, hi: 60_000 };
        /// Most tokens SessionStart injects (latest handoff + context packet); the text
        /// also stays under the harness's 10,000-character cap (about 2,500 tokens).
        injection_budget: u64 = 2_000, Rule::Whole { unit: "tokens", lo: 0, hi: 2_500 };
        /// Most tokens UserPromptSubmit injects of knowledge relevant to the prompt
        /// (0: none); never past 40% of the window with what the transcript uses.
        prompt_budget: u64 = 800, Rule::Whole { unit: "tokens", lo: 0, hi: 2_500 };
        /// The share of a prompt's content words an entry must contain to be injected
        /// at UserPromptSubmit (at least two words).
        prompt_min_match: f64 = 0.34, Rule::Number { what: "a fraction", lo: 0.0, hi: 1.0, note: "" };
        /// Gates that must pass before the agent may stop; on FAIL the Stop is blocked
        /// and the evidence goes back to the agent.
        stop_gates: Vec<String> = Vec::new(), Rule::Text("a list of gate names"), example "[\"tests\"]";
        /// Gates that must pass before a subagent may stop (SubagentStop).
        subagent_stop_gates: Vec<String> = Vec::new(), Rule::Text("a list of gate names"), example "[\"tests\"]";
        /// After this many blocked Stops in a session, let it stop and record an escalation.
        max_stop_blocks: u64 = 3, Rule::Whole { unit: "", lo: 0, hi: 100 };
        /// Write a handoff to .agents/handoffs/ at PreCompact, SessionEnd and a
        /// critical context guard.
        handoffs: bool = true, Rule::Text("true or false");
        /// fsync each tool call's hook events before the hook answers, so they
        /// survive a power cut (a disk flush per tool call, about 1 ms on ext4).
        /// Off, they survive any process being killed, and are fsynced when the
        /// journal takes them in.
        sync_tool_events: bool = false, Rule::Text("true or false");
        /// Give the knowledge a session was given its feedback automatically
        /// (retrieved, used, helpful, harmful: docs/harness.md).
        feedback: bool = true, Rule::Text("true or false");
    }
    /// `[harvest]`: learnings proposed from what sessions did (`agentops harvest`).
    [harvest] HarvestConfig {
        /// A model that rewrites each candidate as Context / Solution / Learning /
        /// Impact (any agentops backend: openai:<model>, anthropic:<model>,
        /// command:claude, command:codex). Unset: the heuristics' own text.
        backend: Option<String> = None,
            Rule::Text("a backend: openai:<model>, anthropic:<model>, command:claude, command:codex or command:<argv>"),
            example "\"command:claude\"";
    }
    /// `[llm]`: model backends of `agentops run` (docs/runner.md). Keys are read
    /// from the environment variables named here; never write a key in this file.
    [llm] LlmConfig {
        /// Base URL of the OpenAI-compatible chat completions API (vLLM, Ollama,
        /// llama.cpp, LM Studio, OpenRouter: their /v1 URL).
        openai_base_url: String = "https://api.openai.com/v1".into(),
            Rule::Text("an http:// or https:// URL of an OpenAI-compatible API"), check base_url;
        /// The NAME of the environment variable holding the OpenAI-compatible key.
        openai_key_env: String = "OPENAI_API_KEY".into(),
            Rule::Text("the NAME of the environment variable holding the key"), check env_var_name;
        /// Base URL of the Anthropic Messages API.
        anthropic_base_url: String = "https://api.anthropic.com".into(),
            Rule::Text("an http:// or https:// URL"), check base_url;
        /// The NAME of the environment variable holding the Anthropic key.
        anthropic_key_env: String = "ANTHROPIC_API_KEY".into(),
            Rule::Text("the NAME of the environment variable holding the key"), check env_var_name;
        /// Seconds one model call may take (also a command harness's).
        timeout_s: u64 = 600, Rule::Whole { unit: "seconds", lo: 1, hi: 86_400 };
        /// Retries on 429, 5xx, timeouts and connection failures (exponential backoff
        /// with jitter, Retry-After honoured).
        max_retries: u64 = 4, Rule::Whole { unit: "", lo: 0, hi: 20 };
        /// Stream responses (SSE).
        stream: bool = true, Rule::Text("true or false");
    }
    /// `[telemetry]`: OpenTelemetry export over OTLP/HTTP
    /// (docs/factor-5-observability.md); the OTEL_EXPORTER_OTLP_* variables win.
    [telemetry] TelemetryConfig {
        /// Base URL (/v1/traces is added) or the traces URL; unset: no export unless
        /// OTEL_EXPORTER_OTLP_ENDPOINT is set. Phoenix: http://127.0.0.1:6006.
        endpoint: Option<String> = None,
            Rule::Text("an http:// or https:// OTLP/HTTP URL: a base (/v1/traces is added) or the traces URL"),
            check optional_url, example "\"http://127.0.0.1:4318\"";
        /// "http/protobuf" or "http/json" (gRPC is not offered).
        protocol: String = "http/protobuf".into(), Rule::Text("\"http/protobuf\" or \"http/json\""),
            check otlp_protocol;
        /// Extra headers sent with every export (API keys belong in
        /// OTEL_EXPORTER_OTLP_HEADERS, not in this file).
        headers: BTreeMap<String, String> = BTreeMap::new(),
            Rule::Text("a table of header = value sent with every export (keys belong in OTEL_EXPORTER_OTLP_HEADERS)"),
            example "{ \"x-team\" = \"infra\" }";
        /// The Phoenix project (openinference.project.name).
        project: String = "agentops".into(), Rule::Text("a Phoenix project name");
        /// When an endpoint is set, `agentops run` / `resume` export in a background thread.
        export_in_run: bool = true, Rule::Text("true or false");
    }
    /// `[alerts]`: thresholds of `agentops status` (exit 1 when one fires).
    [alerts] AlertsConfig {
        /// Fires when an agent's failed model and tool calls exceed this share.
        error_rate: f64 = 0.05, Rule::Number { what: "a fraction", lo: 0.0, hi: 1.0, note: " (0.05 = 5%)" };
        /// Agents with fewer calls in the window are not judged on error rate.
        min_calls: u32 = 20, Rule::Whole { unit: "", lo: 0, hi: 1_000_000 };
        /// A harness session whose last context-guard reading is above this percentage fires.
        context_percent: f64 = 40.0, Rule::Number { what: "a percentage", lo: 1.0, hi: 100.0, note: "" };
        /// A step that took, or has been running, longer than this many seconds fires.
        step_seconds: u64 = 300, Rule::Whole { unit: "seconds", lo: 1, hi: 604_800 };
        /// An unfinished run past this share of a budget (tokens, USD, turns), or today
        /// past this share of daily_usd, fires.
        budget_burn: f64 = 0.8, Rule::Number { what: "a fraction", lo: 0.0, hi: 1.0, note: "" };
        /// Spend per UTC day treated as a budget.
        daily_usd: Option<f64> = None, Rule::Above { what: "a number of US dollars", lo: 0.0 },
            example "50.0";
        /// How far back `status` looks (whole UTC days of the rollup).
        window: String = "24h".into(), Rule::Text("an age such as 24h, 7d, 30m"), check age;
    }
}
