//! Configuration: the project's `.agents/config.toml`, the user's
//! `$XDG_CONFIG_HOME/agentops/config.toml`, `AGENTOPS_*` environment variables
//! and command-line flags, merged with precedence
//! flag > env > project > user > default.
//!
//! A bad value is reported with the file, line and key, and what is allowed.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "name")]
pub enum Source {
    /// A file, by path.
    File(PathBuf),
    /// An environment variable, by name.
    Env(String),
    /// A command-line flag, by name.
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Env(n) => write!(f, "environment variable {n}"),
            Source::Flag(n) => write!(f, "flag {n}"),
        }
    }
}

/// A configuration problem, located as precisely as the input allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{location}: {message}")]
    Invalid {
        /// `file:line:column`, or the env var / flag name.
        location: String,
        /// The dotted key at fault, when known.
        key: Option<String>,
        message: String,
    },
}

impl ConfigError {
    fn invalid(location: String, key: Option<String>, message: String) -> Self {
        ConfigError::Invalid {
            location,
            key,
            message,
        }
    }
}

/// How hard the journal pushes each commit to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// fsync the WAL on every commit: an acknowledged event survives power loss.
    #[default]
    Full,
    /// fsync only at checkpoints: survives a crash of agentops, not of the machine.
    Normal,
}

/// Whether memory writes become git commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemoryCommit {
    /// Commit every memory write.
    #[default]
    Auto,
    /// Write files only; the user commits.
    Off,
}

/// The resolved configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    pub store: StoreConfig,
    pub journal: JournalConfig,
    pub redaction: RedactionConfig,
    pub memory: MemoryConfig,
    pub context: ContextConfig,
    pub policy: PolicyConfig,
    pub hooks: HooksConfig,
    pub llm: LlmConfig,
    /// `[prices]`: USD per million tokens by model-name prefix, over the
    /// checked-in table.
    pub prices: std::collections::BTreeMap<String, PriceOverride>,
    pub telemetry: TelemetryConfig,
    pub alerts: AlertsConfig,
}

/// `[telemetry]`: where spans are exported over OTLP/HTTP.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TelemetryConfig {
    /// Base URL (`/v1/traces` is added) or full traces URL; unset: no export
    /// unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
    pub endpoint: Option<String>,
    /// `http/protobuf` or `http/json`.
    pub protocol: String,
    /// Extra request headers (API keys belong in `OTEL_EXPORTER_OTLP_HEADERS`).
    pub headers: std::collections::BTreeMap<String, String>,
    /// The Phoenix project (`openinference.project.name`).
    pub project: String,
    /// Export in the background of `agentops run` when an endpoint is set.
    pub export_in_run: bool,
}

/// `[alerts]`: thresholds of `agentops status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertsConfig {
    /// Failed model and tool calls over all, per agent (0.05 = 5%).
    pub error_rate: f64,
    /// Agents with fewer calls in the window are not judged on error rate.
    pub min_calls: u32,
    /// Context window fill, in percent, of a harness session.
    pub context_percent: f64,
    /// A step running or taking longer than this many seconds.
    pub step_seconds: u64,
    /// Fraction of a run's budget (or of `daily_usd`) that fires an alert.
    pub budget_burn: f64,
    /// Spend per UTC day that counts as the daily budget.
    pub daily_usd: Option<f64>,
    /// How far back `status` looks (`24h`, `7d`).
    pub window: String,
}

/// `[llm]`: where the model backends connect and how patiently.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LlmConfig {
    /// Base URL of the OpenAI-compatible chat completions API.
    pub openai_base_url: String,
    /// Name of the environment variable holding the OpenAI-compatible key
    /// (never the key itself).
    pub openai_key_env: String,
    pub anthropic_base_url: String,
    pub anthropic_key_env: String,
    /// Seconds one model call may take.
    pub timeout_s: u64,
    /// Retries on 429, 5xx and timeouts.
    pub max_retries: u64,
    /// Stream responses (SSE).
    pub stream: bool,
}

/// One `[prices]` row: USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceOverride {
    pub input: f64,
    pub output: f64,
    /// Default: the input price.
    pub cache_read: Option<f64>,
    /// Default: the input price.
    pub cache_write: Option<f64>,
}

/// What a harness hook does when it cannot decide (an internal error or its
/// time limit): `open` lets the agent go on, `closed` denies the tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    #[default]
    Open,
    Closed,
}

/// `[hooks]`: how `agentops hook claude|codex` behaves inside a harness.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HooksConfig {
    /// Hard time limit for one event, in milliseconds (stop gates and handoff
    /// writes have their own).
    pub timeout_ms: u64,
    /// Most tokens SessionStart injects (handoff + context packet); the text
    /// also stays under the harness's 10,000-character cap.
    pub injection_budget: u64,
    /// Gates that must pass before the agent may stop (Stop).
    pub stop_gates: Vec<String>,
    /// Gates that must pass before a subagent may stop (SubagentStop).
    pub subagent_stop_gates: Vec<String>,
    /// Most times per session a Stop is blocked; then the agent may stop and
    /// an escalation is recorded.
    pub max_stop_blocks: u64,
    /// Write a handoff entry at PreCompact and SessionEnd.
    pub handoffs: bool,
}

/// `[policy]`: what harness hooks allow an agent to run and write.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyConfig {
    /// Use the built-in deny list (force-push, reset --hard, rm -rf / or ~, …).
    pub builtin_rules: bool,
    /// Extra regular expressions of commands to deny.
    pub deny_commands: Vec<String>,
    /// Regular expressions of commands to allow even if a deny rule matches.
    pub allow_commands: Vec<String>,
    /// Globs (relative to the work tree) writes must match; empty: anywhere
    /// inside the project.
    pub write_scope: Vec<String>,
    /// When a PreToolUse hook fails internally or runs out of time: `open`
    /// (allow, the default) or `closed` (deny).
    pub fail: FailMode,
}

/// `[context]`: search ranking, packet budgets, model windows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContextConfig {
    /// The most tokens a context packet may use.
    pub packet_max: u64,
    /// The model's context window, when neither a flag nor the model table says.
    pub window: u64,
    /// Freshness halves every this many days.
    pub half_life_days: f64,
    /// How tokens are counted.
    pub tokenizer: Tokenizer,
    /// At most this many entries get their full body in a packet.
    pub full_entries: u64,
    /// Context windows by model name prefix, overriding the built-in table.
    pub windows: std::collections::BTreeMap<String, u64>,
}

/// `[store]`: where the journal lives.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreConfig {
    /// `None`: SQLite at `<git-common-dir>/agentops/state.db`.
    pub url: Option<String>,
    /// How long a writer waits for another writer's lock before retrying.
    pub busy_timeout_ms: u64,
}

/// `[journal]`: durability of journal writes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JournalConfig {
    pub synchronous: Synchronous,
}

/// `[redaction]`: patterns added to the built-in rule set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RedactionConfig {
    pub extra_patterns: Vec<String>,
}

/// `[memory]`: how knowledge writes reach git.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryConfig {
    pub commit: MemoryCommit,
    /// Commit memory writes to this branch instead of the current one.
    pub branch: Option<String>,
    /// An entry larger than this is written with a warning (bytes).
    pub warn_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            store: StoreConfig {
                url: None,
                busy_timeout_ms: 10_000,
            },
            journal: JournalConfig {
                synchronous: Synchronous::Full,
            },
            redaction: RedactionConfig {
                extra_patterns: Vec::new(),
            },
            memory: MemoryConfig {
                commit: MemoryCommit::Auto,
                branch: None,
                warn_bytes: 256 * 1024,
            },
            policy: PolicyConfig {
                builtin_rules: true,
                deny_commands: Vec::new(),
                allow_commands: Vec::new(),
                write_scope: Vec::new(),
                fail: FailMode::Open,
            },
            hooks: HooksConfig {
                timeout_ms: 2_000,
                injection_budget: 2_000,
                stop_gates: Vec::new(),
                subagent_stop_gates: Vec::new(),
                max_stop_blocks: 3,
                handoffs: true,
            },
            llm: LlmConfig {
                openai_base_url: "https://api.openai.com/v1".into(),
                openai_key_env: "OPENAI_API_KEY".into(),
                anthropic_base_url: "https://api.anthropic.com".into(),
                anthropic_key_env: "ANTHROPIC_API_KEY".into(),
                timeout_s: 600,
                max_retries: 4,
                stream: true,
            },
            prices: std::collections::BTreeMap::new(),
            telemetry: TelemetryConfig {
                endpoint: None,
                protocol: "http/protobuf".into(),
                headers: std::collections::BTreeMap::new(),
                project: "agentops".into(),
                export_in_run: true,
            },
            alerts: AlertsConfig {
                error_rate: 0.05,
                min_calls: 20,
                context_percent: 40.0,
                step_seconds: 300,
                budget_burn: 0.8,
                daily_usd: None,
                window: "24h".into(),
            },
            context: ContextConfig {
                packet_max: 4_000,
                window: 200_000,
                half_life_days: 90.0,
                tokenizer: Tokenizer::O200k,
                full_entries: 5,
                windows: std::collections::BTreeMap::new(),
            },
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Layer {
    store: Option<StoreLayer>,
    journal: Option<JournalLayer>,
    redaction: Option<RedactionLayer>,
    memory: Option<MemoryLayer>,
    context: Option<ContextLayer>,
    policy: Option<PolicyLayer>,
    hooks: Option<HooksLayer>,
    llm: Option<LlmLayer>,
    prices: Option<std::collections::BTreeMap<String, PriceOverride>>,
    telemetry: Option<TelemetryLayer>,
    alerts: Option<AlertsLayer>,
    /// `[gates.<name>]`: validated by the gates engine, which reports its own
    /// file:line:key errors.
    #[serde(rename = "gates")]
    _gates: Option<toml::Table>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyLayer {
    builtin_rules: Option<bool>,
    deny_commands: Option<Vec<String>>,
    allow_commands: Option<Vec<String>>,
    write_scope: Option<Vec<String>>,
    fail: Option<FailMode>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LlmLayer {
    openai_base_url: Option<String>,
    openai_key_env: Option<String>,
    anthropic_base_url: Option<String>,
    anthropic_key_env: Option<String>,
    timeout_s: Option<u64>,
    max_retries: Option<u64>,
    stream: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TelemetryLayer {
    endpoint: Option<String>,
    protocol: Option<String>,
    headers: Option<std::collections::BTreeMap<String, String>>,
    project: Option<String>,
    export_in_run: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsLayer {
    error_rate: Option<f64>,
    min_calls: Option<u64>,
    context_percent: Option<f64>,
    step_seconds: Option<u64>,
    budget_burn: Option<f64>,
    daily_usd: Option<f64>,
    window: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HooksLayer {
    timeout_ms: Option<u64>,
    injection_budget: Option<u64>,
    stop_gates: Option<Vec<String>>,
    subagent_stop_gates: Option<Vec<String>>,
    max_stop_blocks: Option<u64>,
    handoffs: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContextLayer {
    packet_max: Option<u64>,
    window: Option<u64>,
    half_life_days: Option<f64>,
    tokenizer: Option<Tokenizer>,
    full_entries: Option<u64>,
    windows: Option<std::collections::BTreeMap<String, u64>>,
}

/// Tokenizers agentops can count with (`context.tokenizer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tokenizer {
    /// OpenAI's o200k_base (GPT-4o and later); the default.
    #[default]
    O200k,
    Cl100k,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreLayer {
    url: Option<String>,
    busy_timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalLayer {
    synchronous: Option<Synchronous>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedactionLayer {
    extra_patterns: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemoryLayer {
    commit: Option<MemoryCommit>,
    branch: Option<String>,
    warn_bytes: Option<u64>,
}

/// Every key this version understands, as `section.key`, with what it takes.
pub const KEYS: &[(&str, &str)] = &[
    (
        "store.url",
        "a SQLite file path or sqlite:// URL (default: <git-common-dir>/agentops/state.db)",
    ),
    (
        "store.busy_timeout_ms",
        "a whole number of milliseconds, 100 to 600000",
    ),
    ("journal.synchronous", "\"full\" or \"normal\""),
    ("redaction.extra_patterns", "a list of regular expressions"),
    ("memory.commit", "\"auto\" or \"off\""),
    ("memory.branch", "a branch name"),
    ("memory.warn_bytes", "an integer from 1024 to 1073741824"),
    (
        "context.packet_max",
        "a whole number of tokens, 100 to 1000000",
    ),
    (
        "context.window",
        "a whole number of tokens, 1000 to 10000000",
    ),
    ("context.half_life_days", "a number of days above 0"),
    ("context.tokenizer", "\"o200k\" or \"cl100k\""),
    ("context.full_entries", "a whole number, 0 to 100"),
    (
        "context.windows",
        "a table of model-name prefix = tokens, e.g. { \"claude-\" = 200000 }",
    ),
    ("policy.builtin_rules", "true or false"),
    ("policy.deny_commands", "a list of regular expressions"),
    ("policy.allow_commands", "a list of regular expressions"),
    (
        "policy.write_scope",
        "a list of globs relative to the work tree",
    ),
    ("policy.fail", "\"open\" or \"closed\""),
    (
        "hooks.timeout_ms",
        "a whole number of milliseconds, 100 to 60000",
    ),
    (
        "hooks.injection_budget",
        "a whole number of tokens, 0 to 2500",
    ),
    ("hooks.stop_gates", "a list of gate names"),
    ("hooks.subagent_stop_gates", "a list of gate names"),
    ("hooks.max_stop_blocks", "a whole number, 0 to 100"),
    ("hooks.handoffs", "true or false"),
    (
        "llm.openai_base_url",
        "an http:// or https:// URL of an OpenAI-compatible API (default https://api.openai.com/v1)",
    ),
    (
        "llm.openai_key_env",
        "the NAME of the environment variable holding the key (default OPENAI_API_KEY)",
    ),
    (
        "llm.anthropic_base_url",
        "an http:// or https:// URL (default https://api.anthropic.com)",
    ),
    (
        "llm.anthropic_key_env",
        "the NAME of the environment variable holding the key (default ANTHROPIC_API_KEY)",
    ),
    ("llm.timeout_s", "a whole number of seconds, 1 to 86400"),
    ("llm.max_retries", "a whole number, 0 to 20"),
    ("llm.stream", "true or false"),
    (
        "telemetry.endpoint",
        "an http:// or https:// OTLP/HTTP URL: a base (/v1/traces is added) or the traces URL",
    ),
    ("telemetry.protocol", "\"http/protobuf\" or \"http/json\""),
    (
        "telemetry.headers",
        "a table of header = value sent with every export (keys belong in OTEL_EXPORTER_OTLP_HEADERS)",
    ),
    ("telemetry.project", "a Phoenix project name"),
    ("telemetry.export_in_run", "true or false"),
    ("alerts.error_rate", "a fraction, 0 to 1 (0.05 = 5%)"),
    ("alerts.min_calls", "a whole number, 0 to 1000000"),
    ("alerts.context_percent", "a percentage, 1 to 100"),
    (
        "alerts.step_seconds",
        "a whole number of seconds, 1 to 604800",
    ),
    ("alerts.budget_burn", "a fraction, 0 to 1"),
    ("alerts.daily_usd", "a number of US dollars above 0"),
    ("alerts.window", "an age such as 24h, 7d, 30m"),
    (
        "prices.<model-prefix>",
        "{ input = USD, output = USD, cache_read = USD, cache_write = USD } per million tokens",
    ),
];

/// The environment variable for a dotted key: `store.url` → `AGENTOPS_STORE_URL`.
pub fn env_name(key: &str) -> String {
    format!("AGENTOPS_{}", key.replace('.', "_").to_ascii_uppercase())
}

/// Inputs to [`load`]: the files to read and the overrides that beat them.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `.agents/config.toml` of the project, if there is a project.
    pub project_file: Option<PathBuf>,
    /// The user's config file, if any.
    pub user_file: Option<PathBuf>,
    /// Environment variables (name, value); usually `std::env::vars()`.
    pub env: Vec<(String, String)>,
    /// Command-line overrides as (dotted key, value, flag name).
    pub flags: Vec<(String, String, String)>,
}

/// The user's config file: `$XDG_CONFIG_HOME/agentops/config.toml`, else
/// `$HOME/.config/agentops/config.toml`.
pub fn user_config_path(env: &[(String, String)]) -> Option<PathBuf> {
    let get = |n: &str| {
        env.iter()
            .find(|(k, v)| k == n && !v.is_empty())
            .map(|(_, v)| PathBuf::from(v))
    };
    get("XDG_CONFIG_HOME")
        .or_else(|| get("HOME").map(|h| h.join(".config")))
        .map(|d| d.join("agentops").join("config.toml"))
}

/// `policy.fail` read leniently, for when [`load`] fails: a hook must stay
/// closed when the project said `closed`, even if another key is misspelt or
/// the file is not valid TOML. Precedence as in [`load`]: environment, then
/// the project file, then the user's file; anything unreadable counts as unset.
pub fn lenient_fail_mode(opts: &LoadOptions) -> FailMode {
    let parse = |v: &str| match v
        .trim()
        .trim_matches(|c| c == '"' || c == '\'')
        .to_ascii_lowercase()
        .as_str()
    {
        "closed" => Some(FailMode::Closed),
        "open" => Some(FailMode::Open),
        _ => None,
    };
    if let Some(m) = opts
        .env
        .iter()
        .find(|(k, _)| k == "AGENTOPS_POLICY_FAIL")
        .and_then(|(_, v)| parse(v))
    {
        return m;
    }
    for path in [&opts.project_file, &opts.user_file].into_iter().flatten() {
        let Ok(src) = std::fs::read_to_string(path) else {
            continue;
        };
        if let Some(m) = fail_mode_in(&src).and_then(parse) {
            return m;
        }
    }
    FailMode::Open
}

/// The value text of `fail` in the `[policy]` table (or `policy.fail` at the
/// top level), found line by line so a syntax error elsewhere does not hide it.
fn fail_mode_in(src: &str) -> Option<&str> {
    let mut table = "";
    let mut found = None;
    for line in src.lines() {
        let l = line.split('#').next().unwrap_or("").trim();
        if let Some(t) = l.strip_prefix('[') {
            table = t.trim_end_matches(']').trim();
            continue;
        }
        let Some((k, v)) = l.split_once('=') else {
            continue;
        };
        let k = k.trim();
        if (table == "policy" && k == "fail") || (table.is_empty() && k == "policy.fail") {
            found = Some(v.trim());
        }
    }
    found
}

/// Reads and merges every layer. Missing files are fine; unreadable or invalid
/// ones are errors.
pub fn load(opts: &LoadOptions) -> Result<Config, ConfigError> {
    let mut cfg = Config::default();
    for path in [&opts.user_file, &opts.project_file].into_iter().flatten() {
        let src = match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(ConfigError::Unreadable {
                    path: path.clone(),
                    reason: e.to_string(),
                });
            }
        };
        let layer = parse_file(path, &src)?;
        apply(&mut cfg, layer, &|key| {
            let line = locate_key(&src, key).unwrap_or(1);
            format!("{}:{line}", path.display())
        })?;
    }
    for (key, _) in KEYS.iter().filter(|(k, _)| !k.contains('<')) {
        let name = env_name(key);
        if let Some((_, value)) = opts.env.iter().find(|(k, _)| *k == name) {
            let layer = parse_override(key, value, &name)?;
            apply(&mut cfg, layer, &|_| name.clone())?;
        }
    }
    for (key, value, flag) in &opts.flags {
        let layer = parse_override(key, value, flag)?;
        apply(&mut cfg, layer, &|_| flag.clone())?;
    }
    Ok(cfg)
}

/// Parses one config file's text without merging it (for `doctor`).
pub fn check_file(path: &Path, src: &str) -> Result<(), ConfigError> {
    let layer = parse_file(path, src)?;
    let mut cfg = Config::default();
    apply(&mut cfg, layer, &|key| {
        let line = locate_key(src, key).unwrap_or(1);
        format!("{}:{line}", path.display())
    })
}

fn parse_file(path: &Path, src: &str) -> Result<Layer, ConfigError> {
    toml::from_str::<Layer>(src).map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(src, s.start)).unwrap_or((1, 1));
        let key = e.span().and_then(|s| key_at(src, s.start));
        let mut message = explain(e.message(), key.as_deref());
        if e.message().contains("duplicate")
            && let Some(k) = &key
            && let Some(first) = src
                .lines()
                .position(|l| l.trim() == format!("[{k}]"))
                .map(|i| i + 1)
                .filter(|&first| first != line)
        {
            message = format!(
                "table `[{k}]` is defined twice: first at line {first}, again at line {line}; merge them into one"
            );
        }
        ConfigError::invalid(format!("{}:{line}:{col}", path.display()), key, message)
    })
}

fn parse_override(key: &str, value: &str, origin: &str) -> Result<Layer, ConfigError> {
    let (section, name) = key.split_once('.').unwrap_or((key, ""));
    // Typed values (numbers, booleans, lists) are given in TOML syntax; anything
    // that does not parse as TOML is taken as a plain string.
    let toml_value = format!("{name} = {value}");
    let doc = if toml::from_str::<toml::Table>(&toml_value).is_ok() {
        format!("[{section}]\n{toml_value}\n")
    } else {
        let mut t = toml::Table::new();
        t.insert(name.to_owned(), toml::Value::String(value.to_owned()));
        let mut outer = toml::Table::new();
        outer.insert(section.to_owned(), toml::Value::Table(t));
        outer.to_string()
    };
    toml::from_str::<Layer>(&doc).map_err(|e| {
        ConfigError::invalid(
            origin.to_owned(),
            Some(key.to_owned()),
            explain(e.message(), Some(key)),
        )
    })
}

fn explain(message: &str, key: Option<&str>) -> String {
    let msg = message.trim();
    match key.and_then(|k| KEYS.iter().find(|(n, _)| *n == k)) {
        Some((k, allowed)) => format!("key `{k}`: {msg}; allowed: {allowed}"),
        None => match key {
            Some(k) => {
                let close = close_keys(k);
                if close.is_empty() {
                    format!("key `{k}`: {msg}; every key is listed in docs/configuration.md")
                } else {
                    format!("key `{k}`: {msg}; did you mean {}?", close.join(" or "))
                }
            }
            None => msg.to_owned(),
        },
    }
}

/// The known keys `key` is probably a misspelling of (a few edits away, or
/// the same name in another table), as `` `a.b` ``; the keys of its table
/// when nothing is that close.
fn close_keys(key: &str) -> Vec<String> {
    let leaf = |k: &str| k.rsplit('.').next().unwrap_or(k).to_owned();
    let limit = (key.len() / 4).max(2);
    let mut close: Vec<String> = KEYS
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| edits(k, key) <= limit || (leaf(k) == leaf(key) && key.contains('.')))
        .map(|k| format!("`{k}`"))
        .collect();
    if close.is_empty()
        && let Some((table, _)) = key.split_once('.')
    {
        close = KEYS
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| k.split_once('.').is_some_and(|(t, _)| t == table))
            .map(|k| format!("`{k}`"))
            .collect();
    }
    close.truncate(6);
    close
}

/// Levenshtein distance (keys are short).
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// `AGENTOPS_*` variables in `env` that configure nothing: a misspelt key
/// (`AGENTOPS_MEMORY_COMIT`) is otherwise ignored silently. One warning each,
/// with the variable it was probably meant to be.
pub fn unknown_env(env: &[(String, String)]) -> Vec<String> {
    // Variables agentops reads that are not configuration keys.
    const OTHERS: &[&str] = &[
        "AGENTOPS_RUN_ID",
        "AGENTOPS_SESSION_ID",
        "AGENTOPS_AGENT",
        "AGENTOPS_TASK_FILE",
        "AGENTOPS_PHOENIX",
        "AGENTOPS_REQUIRE_PHOENIX",
        "AGENTOPS_TEST_CHILD_WRITER",
    ];
    let known: Vec<String> = KEYS
        .iter()
        .filter(|(k, _)| !k.contains('<'))
        .map(|(k, _)| env_name(k))
        .collect();
    env.iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("AGENTOPS_") && k.len() > "AGENTOPS_".len())
        .filter(|k| {
            !known.contains(k)
                && !OTHERS.contains(&k.as_str())
                && !k.starts_with("AGENTOPS_PRICES_")
        })
        .map(|k| {
            let best = known
                .iter()
                .map(|n| (edits(n, k), n))
                .min()
                .filter(|(d, _)| *d <= 3)
                .map(|(_, n)| format!("; did you mean {n}?"))
                .unwrap_or_default();
            format!("environment variable {k} is not an agentops setting and is ignored{best}")
        })
        .collect()
}

fn apply(cfg: &mut Config, layer: Layer, at: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
    if let Some(s) = layer.store {
        if let Some(url) = s.url {
            check_store_url(&url)
                .map_err(|m| ConfigError::invalid(at("store.url"), Some("store.url".into()), m))?;
            cfg.store.url = Some(url);
        }
        if let Some(t) = s.busy_timeout_ms {
            if !(100..=600_000).contains(&t) {
                return Err(ConfigError::invalid(
                    at("store.busy_timeout_ms"),
                    Some("store.busy_timeout_ms".into()),
                    format!(
                        "key `store.busy_timeout_ms`: {t} is out of range; allowed: a whole number of milliseconds, 100 to 600000"
                    ),
                ));
            }
            cfg.store.busy_timeout_ms = t;
        }
    }
    if let Some(j) = layer.journal
        && let Some(s) = j.synchronous
    {
        cfg.journal.synchronous = s;
    }
    if let Some(r) = layer.redaction
        && let Some(p) = r.extra_patterns
    {
        if let Err(e) = crate::redact::Redactor::with_extra(&p) {
            return Err(ConfigError::invalid(
                at("redaction.extra_patterns"),
                Some("redaction.extra_patterns".into()),
                format!("key `redaction.extra_patterns`: {e}"),
            ));
        }
        cfg.redaction.extra_patterns = p;
    }
    if let Some(m) = layer.memory {
        if let Some(c) = m.commit {
            cfg.memory.commit = c;
        }
        if let Some(b) = m.branch {
            if !valid_branch_name(&b) {
                return Err(ConfigError::invalid(
                    at("memory.branch"),
                    Some("memory.branch".into()),
                    format!(
                        "key `memory.branch`: `{b}` is not a valid branch name; allowed: letters, digits, `/`, `-`, `_`, `.` (no `..`, no leading `-` or `/`)"
                    ),
                ));
            }
            cfg.memory.branch = Some(b);
        }
        if let Some(n) = m.warn_bytes {
            if !(1024..=1 << 30).contains(&n) {
                return Err(ConfigError::invalid(
                    at("memory.warn_bytes"),
                    Some("memory.warn_bytes".into()),
                    format!(
                        "key `memory.warn_bytes`: {n} is out of range; allowed: an integer from 1024 to 1073741824"
                    ),
                ));
            }
            cfg.memory.warn_bytes = n;
        }
    }
    if let Some(p) = layer.policy {
        if let Some(b) = p.builtin_rules {
            cfg.policy.builtin_rules = b;
        }
        for (key, list, target) in [
            (
                "policy.deny_commands",
                p.deny_commands,
                &mut cfg.policy.deny_commands,
            ),
            (
                "policy.allow_commands",
                p.allow_commands,
                &mut cfg.policy.allow_commands,
            ),
        ] {
            if let Some(list) = list {
                for pat in &list {
                    if let Err(e) = regex::Regex::new(pat) {
                        return Err(ConfigError::invalid(
                            at(key),
                            Some(key.into()),
                            format!("key `{key}`: `{pat}` is not a valid regular expression: {e}"),
                        ));
                    }
                }
                *target = list;
            }
        }
        if let Some(w) = p.write_scope {
            cfg.policy.write_scope = w;
        }
        if let Some(f) = p.fail {
            cfg.policy.fail = f;
        }
    }
    let range = |key: &str, v: u64, lo: u64, hi: u64| -> Result<u64, ConfigError> {
        if (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(ConfigError::invalid(
                at(key),
                Some(key.into()),
                format!("key `{key}`: {v} is out of range; allowed: {lo} to {hi}"),
            ))
        }
    };
    if let Some(h) = layer.hooks {
        if let Some(v) = h.timeout_ms {
            cfg.hooks.timeout_ms = range("hooks.timeout_ms", v, 100, 60_000)?;
        }
        if let Some(v) = h.injection_budget {
            // 2,500 tokens is about the harness's 10,000-character cap.
            cfg.hooks.injection_budget = range("hooks.injection_budget", v, 0, 2_500)?;
        }
        if let Some(v) = h.max_stop_blocks {
            cfg.hooks.max_stop_blocks = range("hooks.max_stop_blocks", v, 0, 100)?;
        }
        if let Some(v) = h.stop_gates {
            cfg.hooks.stop_gates = v;
        }
        if let Some(v) = h.subagent_stop_gates {
            cfg.hooks.subagent_stop_gates = v;
        }
        if let Some(v) = h.handoffs {
            cfg.hooks.handoffs = v;
        }
    }
    if let Some(l) = layer.llm {
        for (key, v, target) in [
            (
                "llm.openai_base_url",
                l.openai_base_url,
                &mut cfg.llm.openai_base_url,
            ),
            (
                "llm.anthropic_base_url",
                l.anthropic_base_url,
                &mut cfg.llm.anthropic_base_url,
            ),
        ] {
            if let Some(v) = v {
                if !(v.starts_with("http://") || v.starts_with("https://")) {
                    return Err(ConfigError::invalid(
                        at(key),
                        Some(key.into()),
                        format!("key `{key}`: `{v}` is not an http:// or https:// URL"),
                    ));
                }
                *target = v.trim_end_matches('/').to_owned();
            }
        }
        for (key, v, target) in [
            (
                "llm.openai_key_env",
                l.openai_key_env,
                &mut cfg.llm.openai_key_env,
            ),
            (
                "llm.anthropic_key_env",
                l.anthropic_key_env,
                &mut cfg.llm.anthropic_key_env,
            ),
        ] {
            if let Some(v) = v {
                let is_name = !v.is_empty()
                    && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !v.starts_with(|c: char| c.is_ascii_digit());
                if !is_name {
                    return Err(ConfigError::invalid(
                        at(key),
                        Some(key.into()),
                        format!(
                            "key `{key}`: not an environment variable name; put the key in the environment and name the variable here (never the key itself)"
                        ),
                    ));
                }
                *target = v;
            }
        }
        if let Some(v) = l.timeout_s {
            cfg.llm.timeout_s = range("llm.timeout_s", v, 1, 86_400)?;
        }
        if let Some(v) = l.max_retries {
            cfg.llm.max_retries = range("llm.max_retries", v, 0, 20)?;
        }
        if let Some(v) = l.stream {
            cfg.llm.stream = v;
        }
    }
    if let Some(p) = layer.prices {
        for (model, price) in p {
            let all = [
                Some(price.input),
                Some(price.output),
                price.cache_read,
                price.cache_write,
            ];
            if all.iter().flatten().any(|v| !(v.is_finite() && *v >= 0.0)) {
                let key = format!("prices.{model}");
                return Err(ConfigError::invalid(
                    at(&key),
                    Some(key.clone()),
                    format!("key `{key}`: prices must be numbers ≥ 0 (USD per million tokens)"),
                ));
            }
            cfg.prices.insert(model, price);
        }
    }
    if let Some(t) = layer.telemetry {
        if let Some(e) = t.endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(ConfigError::invalid(
                    at("telemetry.endpoint"),
                    Some("telemetry.endpoint".into()),
                    format!("key `telemetry.endpoint`: `{e}` is not an http:// or https:// URL"),
                ));
            }
            cfg.telemetry.endpoint = Some(e);
        }
        if let Some(p) = t.protocol {
            if p != "http/protobuf" && p != "http/json" {
                return Err(ConfigError::invalid(
                    at("telemetry.protocol"),
                    Some("telemetry.protocol".into()),
                    format!(
                        "key `telemetry.protocol`: `{p}` is not supported; allowed: \"http/protobuf\" or \"http/json\" (gRPC is not offered)"
                    ),
                ));
            }
            cfg.telemetry.protocol = p;
        }
        if let Some(h) = t.headers {
            cfg.telemetry.headers = h;
        }
        if let Some(p) = t.project {
            cfg.telemetry.project = p;
        }
        if let Some(b) = t.export_in_run {
            cfg.telemetry.export_in_run = b;
        }
    }
    if let Some(a) = layer.alerts {
        let frac = |key: &str, v: f64, lo: f64, hi: f64| -> Result<f64, ConfigError> {
            if v.is_finite() && v >= lo && v <= hi {
                Ok(v)
            } else {
                Err(ConfigError::invalid(
                    at(key),
                    Some(key.into()),
                    format!("key `{key}`: {v} is out of range; allowed: {lo} to {hi}"),
                ))
            }
        };
        if let Some(v) = a.error_rate {
            cfg.alerts.error_rate = frac("alerts.error_rate", v, 0.0, 1.0)?;
        }
        if let Some(v) = a.budget_burn {
            cfg.alerts.budget_burn = frac("alerts.budget_burn", v, 0.0, 1.0)?;
        }
        if let Some(v) = a.context_percent {
            cfg.alerts.context_percent = frac("alerts.context_percent", v, 1.0, 100.0)?;
        }
        if let Some(v) = a.daily_usd {
            cfg.alerts.daily_usd = Some(frac("alerts.daily_usd", v, 1e-9, 1e12)?);
        }
        if let Some(v) = a.min_calls {
            cfg.alerts.min_calls =
                u32::try_from(range("alerts.min_calls", v, 0, 1_000_000)?).unwrap_or(0);
        }
        if let Some(v) = a.step_seconds {
            cfg.alerts.step_seconds = range("alerts.step_seconds", v, 1, 604_800)?;
        }
        if let Some(w) = a.window {
            if crate::time::parse_age(&w).is_none_or(|us| us <= 0) {
                return Err(ConfigError::invalid(
                    at("alerts.window"),
                    Some("alerts.window".into()),
                    format!(
                        "key `alerts.window`: `{w}` is not an age; allowed: an age such as 24h, 7d, 30m"
                    ),
                ));
            }
            cfg.alerts.window = w;
        }
    }
    if let Some(c) = layer.context {
        if let Some(v) = c.packet_max {
            cfg.context.packet_max = range("context.packet_max", v, 100, 1_000_000)?;
        }
        if let Some(v) = c.window {
            cfg.context.window = range("context.window", v, 1_000, 10_000_000)?;
        }
        if let Some(v) = c.full_entries {
            cfg.context.full_entries = range("context.full_entries", v, 0, 100)?;
        }
        if let Some(v) = c.half_life_days {
            if !(v.is_finite() && v > 0.0) {
                return Err(ConfigError::invalid(
                    at("context.half_life_days"),
                    Some("context.half_life_days".into()),
                    format!(
                        "key `context.half_life_days`: {v} is not allowed; allowed: a number of days above 0"
                    ),
                ));
            }
            cfg.context.half_life_days = v;
        }
        if let Some(t) = c.tokenizer {
            cfg.context.tokenizer = t;
        }
        if let Some(w) = c.windows {
            for (model, tokens) in w {
                range("context.windows", tokens, 1_000, 10_000_000)?;
                cfg.context.windows.insert(model, tokens);
            }
        }
    }
    Ok(())
}

fn check_store_url(url: &str) -> Result<(), String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Err(
            "key `store.url`: the Postgres store is not available in this build yet; allowed: a SQLite file path or sqlite:// URL".into(),
        );
    }
    if url.trim().is_empty() {
        return Err(
            "key `store.url`: is empty; allowed: a SQLite file path or sqlite:// URL".into(),
        );
    }
    if let Some((scheme, _)) = url.split_once("://")
        && scheme != "sqlite"
    {
        return Err(format!(
            "key `store.url`: unknown scheme `{scheme}://`; allowed: a SQLite file path or sqlite:// URL"
        ));
    }
    Ok(())
}

/// Whether `name` is acceptable as a git branch name (a conservative subset of
/// `git check-ref-format --branch`).
pub fn valid_branch_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('-')
        && !name.starts_with('/')
        && !name.ends_with('/')
        && !name.ends_with(".lock")
        && !name.ends_with('.')
        && !name.contains("..")
        && !name.contains("//")
        && !name.contains("@{")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'))
}

fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = &src.as_bytes()[..offset];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let col = 1 + before.iter().rev().take_while(|&&b| b != b'\n').count();
    (line, col)
}

/// The dotted key whose line contains `offset`: the nearest `[section]` header
/// above it and the bare key at the start of the line.
fn key_at(src: &str, offset: usize) -> Option<String> {
    let offset = offset.min(src.len());
    let line_start = src[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = src[offset..].find('\n').map_or(src.len(), |i| offset + i);
    let line = src[line_start..line_end].trim();
    let section = src[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && !l.starts_with("[["))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    if line.starts_with('[') {
        return Some(
            line.trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_owned(),
        );
    }
    let key = line.split('=').next()?.trim().trim_matches('"');
    if key.is_empty() {
        return section;
    }
    Some(match section {
        Some(s) if !key.contains('.') => format!("{s}.{key}"),
        _ => key.to_owned(),
    })
}

/// The 1-based line on which dotted `key` is set in `src`, if it can be found.
fn locate_key(src: &str, key: &str) -> Option<usize> {
    let (section, name) = key.split_once('.')?;
    let mut current = String::new();
    for (i, raw) in src.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') {
            current = line
                .trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_owned();
            continue;
        }
        let Some(k) = line.split('=').next().map(|k| k.trim().trim_matches('"')) else {
            continue;
        };
        if (current == section && k == name) || (current.is_empty() && k == key) {
            return Some(i + 1);
        }
    }
    None
}

/// A commented `config.toml` for `agentops init`, listing every key.
pub fn commented_template() -> String {
    String::from(
        r#"# agentops project configuration. Every key is optional; the commented values
# are the defaults. Precedence: command-line flag > AGENTOPS_* environment
# variable (e.g. AGENTOPS_MEMORY_COMMIT=off) > this file > the user's
# $XDG_CONFIG_HOME/agentops/config.toml > built-in default.
# Never put secrets here: name the environment variable that holds them.

[store]
# Where the journal lives. Default: <git-common-dir>/agentops/state.db (SQLite).
# url = "sqlite:///path/to/state.db"
# How long a writer waits for another process's lock, in milliseconds.
# busy_timeout_ms = 10000

[journal]
# "full": every journal commit is fsynced (survives power loss).
# "normal": fsync at checkpoints only (survives a crash of agentops, not of the machine).
# synchronous = "full"

[redaction]
# Regular expressions redacted in addition to the built-in rules (group 1, if
# present, is the secret; otherwise the whole match).
# extra_patterns = ["acme_[0-9a-f]{32}"]

[memory]
# "auto": every memory write is a git commit. "off": write files only.
# commit = "auto"
# Commit memory writes to this branch instead of the current one.
# branch = "agentops/memory"
# Warn when an entry is larger than this many bytes (it is still written;
# search indexes its first 64 KiB).
# warn_bytes = 262144

[context]
# The most tokens a context packet may use; the packet also never takes the
# whole context window past 40% (0.40 x window - tokens already in use).
# packet_max = 4000
# The context window assumed when the model is not in the table below.
# window = 200000
# Freshness of an entry halves every this many days.
# half_life_days = 90
# How tokens are counted: "o200k" or "cl100k".
# tokenizer = "o200k"
# At most this many entries get their full text in a packet.
# full_entries = 5
# Context windows by model-name prefix (longest prefix wins).
# windows = { "claude-" = 200000, "gpt-4.1" = 1047576 }

[policy]
# What harness hooks let an agent run and write (docs/factor-4-gates.md).
# The built-in deny list: force-push, reset --hard, git clean -fd/-fdx,
# rm -rf of / or ~, curl|wget piped to a shell, dropping databases, disk wipes.
# builtin_rules = true
# deny_commands = ["\\bterraform\\s+destroy\\b"]
# allow_commands = ["^git push --force origin scratch$"]
# Where writes may go (globs relative to the work tree); empty: anywhere in the project.
# write_scope = ["src/**", "tests/**"]
# When a PreToolUse hook fails internally or runs out of time: "open" lets the
# agent go on (default), "closed" denies the tool call.
# fail = "open"

[hooks]
# `agentops hook claude|codex` inside a harness (docs/harness.md).
# Hard time limit per event, in milliseconds (stop gates have their own).
# timeout_ms = 2000
# Most tokens SessionStart injects (latest handoff + context packet).
# injection_budget = 2000
# Gates that must pass before the agent may stop; on FAIL the Stop is blocked
# and the evidence goes back to the agent.
# stop_gates = ["tests"]
# subagent_stop_gates = []
# After this many blocked Stops in a session, let it stop and record an escalation.
# max_stop_blocks = 3
# Write a handoff to .agents/handoffs/ at PreCompact and SessionEnd.
# handoffs = true

[llm]
# Model backends of `agentops run` (docs/runner.md). Keys are read from the
# environment variables named here; never write a key in this file.
# openai_base_url = "https://api.openai.com/v1"   # vLLM, Ollama, LM Studio, OpenRouter: their /v1 URL
# openai_key_env = "OPENAI_API_KEY"
# anthropic_base_url = "https://api.anthropic.com"
# anthropic_key_env = "ANTHROPIC_API_KEY"
# timeout_s = 600
# max_retries = 4
# stream = true

# OpenTelemetry export (docs/factor-5-observability.md). Also read from
# OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_HEADERS.
# [telemetry]
# endpoint = "http://127.0.0.1:6006"   # Phoenix; a collector: http://127.0.0.1:4318
# protocol = "http/protobuf"            # or "http/json"
# project = "agentops"                  # Phoenix project
# headers = { "x-team" = "infra" }      # extra headers (API keys: OTEL_EXPORTER_OTLP_HEADERS)
# export_in_run = true                  # export in the background of `agentops run`

# Thresholds of `agentops status` (exit 1 when one fires).
# [alerts]
# error_rate = 0.05
# min_calls = 20
# context_percent = 40
# step_seconds = 300
# budget_burn = 0.8
# daily_usd = 50.0
# window = "24h"

# Prices in USD per million tokens, by model-name prefix, over the built-in table.
# [prices]
# "my-finetune" = { input = 3.0, output = 12.0, cache_read = 0.3 }

# Gates: checks that block bad work, run by `agentops gate run` (and between
# workflow phases). Kinds: command, scope, diff, secrets, judge, council, approval
# (docs/factor-4-gates.md).
# [gates.tests]
# kind = "command"
# command = "cargo test"
# timeout_s = 900
#
# [gates.scope]
# kind = "scope"
# allow = ["src/**", "tests/**", "docs/**"]
#
# [gates.size]
# kind = "diff"
# max_files = 30
# max_lines = 1500
#
# [gates.secrets]
# kind = "secrets"
"#,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn fail_mode_is_read_leniently_from_broken_files() {
        let dir = tempfile::tempdir().unwrap();
        let opts = |project: &str, env: &[(&str, &str)]| LoadOptions {
            project_file: Some(write(dir.path(), "p.toml", project)),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        // A typo elsewhere (load fails) and a syntax error do not hide it.
        let typo = "[memory]\ncomit = \"auto\"\n\n[policy]\nfail = \"closed\"  # no surprises\n";
        assert!(load(&opts(typo, &[])).is_err());
        assert_eq!(lenient_fail_mode(&opts(typo, &[])), FailMode::Closed);
        let broken = "[policy\nfail = 'closed'\n[[[ nonsense";
        assert_eq!(lenient_fail_mode(&opts(broken, &[])), FailMode::Closed);
        assert_eq!(
            lenient_fail_mode(&opts("policy.fail = \"closed\"\n", &[])),
            FailMode::Closed
        );
        // Another table's `fail` is not the policy's.
        assert_eq!(
            lenient_fail_mode(&opts("[gates.x]\nfail = \"closed\"\n", &[])),
            FailMode::Open
        );
        assert_eq!(
            lenient_fail_mode(&opts(typo, &[("AGENTOPS_POLICY_FAIL", "open")])),
            FailMode::Open
        );
        assert_eq!(lenient_fail_mode(&LoadOptions::default()), FailMode::Open);
    }

    #[test]
    fn template_parses_to_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "c.toml", &commented_template());
        let cfg = load(&LoadOptions {
            project_file: Some(p),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(cfg, Config::default());
    }

    #[test]
    fn precedence_flag_env_project_user() {
        let dir = tempfile::tempdir().unwrap();
        let user = write(
            dir.path(),
            "user.toml",
            "[memory]\ncommit = \"off\"\nbranch = \"user-branch\"\n[store]\nbusy_timeout_ms = 200\n",
        );
        let project = write(
            dir.path(),
            "project.toml",
            "[memory]\nbranch = \"project-branch\"\n[store]\nbusy_timeout_ms = 300\n",
        );
        let opts = LoadOptions {
            project_file: Some(project),
            user_file: Some(user),
            env: vec![("AGENTOPS_STORE_BUSY_TIMEOUT_MS".into(), "400".into())],
            flags: vec![],
        };
        let cfg = load(&opts).unwrap();
        assert_eq!(cfg.memory.commit, MemoryCommit::Off);
        assert_eq!(cfg.memory.branch.as_deref(), Some("project-branch"));
        assert_eq!(cfg.store.busy_timeout_ms, 400);
        let cfg = load(&LoadOptions {
            flags: vec![(
                "store.busy_timeout_ms".into(),
                "500".into(),
                "--busy-timeout".into(),
            )],
            ..opts
        })
        .unwrap();
        assert_eq!(cfg.store.busy_timeout_ms, 500);
    }

    #[test]
    fn bad_enum_value_names_file_line_key_and_allowed_values() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "config.toml",
            "# comment\n[memory]\nbranch = \"main\"\ncommit = \"sometimes\"\n",
        );
        let err = load(&LoadOptions {
            project_file: Some(p.clone()),
            ..Default::default()
        })
        .unwrap_err();
        let ConfigError::Invalid {
            location,
            key,
            message,
        } = err
        else {
            panic!("wrong error")
        };
        assert_eq!(location, format!("{}:4:10", p.display()));
        assert_eq!(key.as_deref(), Some("memory.commit"));
        assert!(message.contains("`auto`"), "{message}");
        assert!(
            message.contains("allowed: \"auto\" or \"off\""),
            "{message}"
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "config.toml", "[store]\nurll = \"x\"\n");
        let err = load(&LoadOptions {
            project_file: Some(p.clone()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with(&format!("{}:2:1: key `store.urll`", p.display())),
            "{err}"
        );
        assert!(err.contains("unknown field `urll`"), "{err}");
    }

    #[test]
    fn semantic_errors_are_located() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "config.toml",
            "[redaction]\n\nextra_patterns = [\"(\"]\n",
        );
        let err = load(&LoadOptions {
            project_file: Some(p.clone()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with(&format!(
                "{}:3: key `redaction.extra_patterns`",
                p.display()
            )),
            "{err}"
        );
        let p = write(dir.path(), "c2.toml", "[store]\nurl = \"postgres://x\"\n");
        let err = load(&LoadOptions {
            project_file: Some(p.clone()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with(&format!("{}:2: key `store.url`", p.display())),
            "{err}"
        );
    }

    #[test]
    fn env_errors_name_the_variable() {
        let err = load(&LoadOptions {
            env: vec![("AGENTOPS_JOURNAL_SYNCHRONOUS".into(), "maybe".into())],
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("AGENTOPS_JOURNAL_SYNCHRONOUS: key `journal.synchronous`"),
            "{err}"
        );
        let err = load(&LoadOptions {
            env: vec![("AGENTOPS_STORE_BUSY_TIMEOUT_MS".into(), "soon".into())],
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("store.busy_timeout_ms"), "{err}");
    }

    #[test]
    fn syntax_error_is_located() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "config.toml", "[store]\nurl = \n");
        let err = load(&LoadOptions {
            project_file: Some(p.clone()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.starts_with(&format!("{}:2:", p.display())), "{err}");
    }

    #[test]
    fn context_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "c.toml",
            "[context]\npacket_max = 2000\ntokenizer = \"cl100k\"\nwindows = { \"my-model\" = 32000 }\n",
        );
        let cfg = load(&LoadOptions {
            project_file: Some(p),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(cfg.context.packet_max, 2000);
        assert_eq!(cfg.context.tokenizer, Tokenizer::Cl100k);
        assert_eq!(cfg.context.windows.get("my-model"), Some(&32000));
        let p = write(dir.path(), "d.toml", "[context]\n\npacket_max = 5\n");
        let err = load(&LoadOptions {
            project_file: Some(p.clone()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with(&format!(
                "{}:3: key `context.packet_max`: 5 is out of range",
                p.display()
            )),
            "{err}"
        );
    }

    #[test]
    fn branch_names() {
        assert!(valid_branch_name("agentops/memory"));
        assert!(!valid_branch_name("../x"));
        assert!(!valid_branch_name("-x"));
        assert!(!valid_branch_name("a b"));
    }

    /// Every key is documented in docs/configuration.md, in the commented
    /// template `init` writes, and reachable as an `AGENTOPS_*` variable; and
    /// the reference documents no key this version does not know.
    #[test]
    fn every_key_is_documented_templated_and_nothing_else_is() {
        let docs = include_str!("../../../docs/configuration.md");
        let template = commented_template();
        for (key, _) in KEYS {
            assert!(
                docs.contains(&format!("`{key}`")),
                "docs/configuration.md lacks `{key}`"
            );
            if key.contains('<') {
                continue;
            }
            let (section, name) = key.split_once('.').unwrap();
            let in_section = template
                .split(&format!("[{section}]"))
                .nth(1)
                .is_some_and(|rest| {
                    rest.split("\n[")
                        .next()
                        .unwrap_or("")
                        .contains(&format!("# {name} ="))
                });
            assert!(in_section, "the template lacks `{name}` in [{section}]");
            assert_eq!(
                env_name(key),
                format!("AGENTOPS_{}", key.replace('.', "_").to_uppercase())
            );
        }
        // Rows of the reference tables name known keys only.
        for line in docs.lines().filter(|l| l.starts_with("| `")) {
            let key = line.trim_start_matches("| `").split('`').next().unwrap();
            let known = KEYS.iter().any(|(k, _)| *k == key)
                || key.starts_with("prices.")
                || key.starts_with("gates.")
                || !key.contains('.');
            assert!(known, "docs/configuration.md documents unknown key `{key}`");
        }
    }
}
