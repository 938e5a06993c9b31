//! The one redaction rule set. Every journal body, knowledge entry, gate
//! evidence and export passes through it before it is stored or sent.
//!
//! Each rule replaces what it finds with `[REDACTED:<rule-id>]`. Rules that
//! match a secret inside a larger shape (`PASSWORD=…`, `Bearer …`,
//! `postgres://user:…@host`) replace only the secret, so the text stays
//! readable. A match that spans lines keeps its line breaks, so line numbers
//! are the same before and after redaction (gates report `file:line`).
//! Redacting twice gives the same text as redacting once.

use std::borrow::Cow;
use std::sync::{LazyLock, OnceLock};

use regex::{Captures, Regex};

/// The text a redacted secret is replaced with, before the rule id.
pub const MARKER_PREFIX: &str = "[REDACTED:";

/// A place where a rule found a secret. Never carries the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule's id, such as `github-token`.
    pub rule: String,
    /// 1-based line of the secret's first character in the input.
    pub line: usize,
}

type Check = fn(&str, &str) -> bool;

#[derive(Clone)]
struct Rule {
    id: String,
    pattern: String,
    /// Compiled on first use: most texts trigger few rules, and compiling all
    /// of them costs about 2 ms, too much for a hook on every tool call.
    re: OnceLock<Option<Regex>>,
    /// Replace only the first participating capture group, not the whole match.
    group: bool,
    /// Extra test on (secret, full input before the match) beyond the regex.
    check: Option<Check>,
    /// The rule can only match if the lowercased text contains one of these.
    /// Empty: always run.
    triggers: &'static [&'static str],
    /// A cheaper necessary condition on the text, for rules whose literal
    /// triggers are too common (`.`, `sk`): the rule's regex is compiled and
    /// run only when it holds.
    gate: Option<fn(&str) -> bool>,
}

impl Rule {
    fn regex(&self) -> Option<&Regex> {
        self.re
            .get_or_init(|| Regex::new(&self.pattern).ok())
            .as_ref()
    }

    fn may_match(&self, text: &str, lower: &str) -> bool {
        (self.triggers.is_empty() || self.triggers.iter().any(|t| lower.contains(t)))
            && self.gate.is_none_or(|g| g(text))
    }
}

/// Why a configured extra pattern cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("redaction pattern `{pattern}` is not a valid regular expression: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: String,
}

/// A compiled rule set: the built-in rules plus any configured extras.
pub struct Redactor {
    rules: Vec<Rule>,
}

/// (id, pattern, replace group only, extra check, literal triggers).
type BuiltinRule = (
    &'static str,
    &'static str,
    bool,
    Option<Check>,
    &'static [&'static str],
);

const BUILTIN: &[BuiltinRule] = &[
    (
        "private-key",
        r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|\z)",
        false,
        None,
        &["private key"],
    ),
    (
        "anthropic-key",
        r"\bsk-ant-[a-z]{2,8}\d{2}-[A-Za-z0-9_-]{20,}",
        false,
        None,
        &["sk-ant-"],
    ),
    (
        "openai-key",
        r"\bsk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,}",
        false,
        Some(has_digit_and_letter),
        &["sk-"],
    ),
    (
        "aws-access-key-id",
        r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}\b",
        false,
        None,
        &[
            "akia", "asia", "abia", "acca", "agpa", "aida", "aroa", "aipa", "anpa", "anva", "apka",
        ],
    ),
    (
        "aws-secret-key",
        r#"(?i)aws_?(?:secret)?_?(?:access)?_?key["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})(?:[^A-Za-z0-9/+=]|$)"#,
        true,
        None,
        &["aws"],
    ),
    (
        "github-token",
        r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b",
        false,
        None,
        &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
    ),
    (
        "github-pat",
        r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b",
        false,
        None,
        &["github_pat_"],
    ),
    (
        "gitlab-token",
        r"\bglpat-[A-Za-z0-9_-]{20,}",
        false,
        None,
        &["glpat-"],
    ),
    (
        "slack-token",
        r"\bxox[abposre]-[A-Za-z0-9-]{10,}",
        false,
        None,
        &["xox"],
    ),
    (
        "slack-webhook",
        r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_-]+",
        false,
        None,
        &["hooks.slack.com"],
    ),
    (
        "google-api-key",
        r"\bAIza[0-9A-Za-z_-]{35}",
        false,
        None,
        &["aiza"],
    ),
    (
        "google-oauth-secret",
        r"\bGOCSPX-[A-Za-z0-9_-]{20,}",
        false,
        None,
        &["gocspx-"],
    ),
    (
        "google-oauth-token",
        r"\bya29\.[0-9A-Za-z_-]{20,}",
        false,
        None,
        &["ya29."],
    ),
    (
        "stripe-key",
        r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}",
        false,
        None,
        &["_live_", "_test_"],
    ),
    (
        "stripe-webhook-secret",
        r"\bwhsec_[0-9A-Za-z]{24,}",
        false,
        None,
        &["whsec_"],
    ),
    (
        "npm-token",
        r"\bnpm_[A-Za-z0-9]{36}\b",
        false,
        None,
        &["npm_"],
    ),
    (
        "pypi-token",
        r"\bpypi-AgE[A-Za-z0-9_-]{50,}",
        false,
        None,
        &["pypi-age"],
    ),
    (
        "huggingface-token",
        r"\bhf_[A-Za-z0-9]{30,}\b",
        false,
        None,
        &["hf_"],
    ),
    (
        "sendgrid-key",
        r"\bSG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{30,50}",
        false,
        None,
        &["sg."],
    ),
    ("twilio-key", r"\bSK[0-9a-fA-F]{32}\b", false, None, &["sk"]),
    (
        "mailgun-key",
        r"\bkey-[0-9a-zA-Z]{32}\b",
        false,
        None,
        &["key-"],
    ),
    (
        "digitalocean-token",
        r"\bdo[opr]_v1_[a-f0-9]{64}\b",
        false,
        None,
        &["_v1_"],
    ),
    (
        "shopify-token",
        r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b",
        false,
        None,
        &["shpat_", "shpca_", "shppa_", "shpss_"],
    ),
    (
        "telegram-bot-token",
        r"\b\d{8,10}:AA[A-Za-z0-9_-]{33}\b",
        false,
        None,
        &[":aa"],
    ),
    (
        "discord-bot-token",
        r"\b[MNO][A-Za-z0-9_-]{23,25}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38}\b",
        false,
        None,
        &["."],
    ),
    (
        "azure-storage-key",
        r"(?i)(?:AccountKey|SharedAccessKey)=([A-Za-z0-9+/=]{20,})",
        true,
        None,
        &["accountkey=", "sharedaccesskey="],
    ),
    (
        "jwt",
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        false,
        None,
        &["eyj"],
    ),
    (
        "bearer-token",
        r"(?i)\bbearer\s+([A-Za-z0-9._~+/=-]{8,})",
        true,
        Some(not_marker),
        &["bearer"],
    ),
    (
        "basic-auth",
        r#"(?i)\bauthorization["']?\s*[:=]\s*["']?basic\s+([A-Za-z0-9+/=]{8,})"#,
        true,
        None,
        &["basic"],
    ),
    (
        "connection-string-password",
        r#"\b[a-zA-Z][a-zA-Z0-9+.-]{1,30}://[^:/?#\s@"'<>]*:([^@/?#\s"'<>]+)@"#,
        true,
        Some(not_marker),
        &["://"],
    ),
    (
        "sensitive-assignment",
        r#"(?i)\b[A-Z0-9_.-]*(?:PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|SECRET_?KEY|CREDENTIALS?|AUTH_?KEY|SESSION_?KEY|CLIENT_?SECRET|COOKIE)(?:_[A-Z0-9_]*)?["']?\s*(?::|=|:=)\s*(?:"([^"\n]*)"|'([^'\n]*)'|([^\s"',;]+))"#,
        true,
        Some(assignment_value_is_secret),
        &[
            "password",
            "passwd",
            "passphrase",
            "secret",
            "token",
            "api_key",
            "apikey",
            "access_key",
            "accesskey",
            "private_key",
            "privatekey",
            "credential",
            "auth_key",
            "authkey",
            "session_key",
            "sessionkey",
            "cookie",
        ],
    ),
];

fn has_digit_and_letter(s: &str, _before: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_digit()) && s.bytes().filter(u8::is_ascii_alphabetic).count() > 4
}

fn not_marker(s: &str, before: &str) -> bool {
    !s.starts_with(MARKER_PREFIX) && !before.ends_with(MARKER_PREFIX)
}

fn assignment_value_is_secret(value: &str, _before: &str) -> bool {
    let v = value.trim_matches(|c| c == '"' || c == '\'');
    if v.len() < 3 || v.starts_with(MARKER_PREFIX) || v.starts_with("REDACTED") {
        return false;
    }
    let lower = v.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "true"
            | "false"
            | "null"
            | "none"
            | "nil"
            | "undefined"
            | "yes"
            | "no"
            | "required"
            | "optional"
            | "string"
            | "secret"
            | "password"
            | "token"
            | "changeme"
            | "redacted"
    ) {
        return false;
    }
    // References and placeholders are not secrets: $VAR, ${VAR}, <token>, ***, xxxx.
    if v.starts_with('$')
        || v.starts_with('<')
        || v.starts_with("{{")
        || v.starts_with('%')
        || v.bytes()
            .all(|b| b == b'*' || b == b'x' || b == b'X' || b == b'.')
    {
        return false;
    }
    // Numbers are counts (max_tokens=4000), not secrets.
    if v.bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b'_')
    {
        return false;
    }
    // Code: `token = get_token()`, `password: &str`.
    if v.contains('(') || v.starts_with('&') || v.ends_with(')') {
        return false;
    }
    true
}

fn shannon_bits_per_char(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[usize::from(b)] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

fn decodes_to_text(s: &str) -> bool {
    let t = s.trim_end_matches('=');
    if t.len() < 16 {
        return false;
    }
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut printable = 0usize;
    let mut total = 0usize;
    for c in t.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return false,
        };
        bits = (bits << 6) | u32::from(v);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            let byte = ((bits >> nbits) & 0xff) as u8;
            total += 1;
            if byte.is_ascii_graphic() || byte == b' ' || byte == b'\n' || byte == b'\t' {
                printable += 1;
            }
        }
    }
    total > 0 && printable * 100 >= total * 95
}

/// Prefixes of the ids Anthropic (`msg_`, `req_`, `toolu_`, `srvtoolu_`,
/// `msgbatch_`) and OpenAI (`chatcmpl-`, `call_`, `resp_`, `rs_`, `fc_`)
/// give messages, requests and tool calls. No credential format of either
/// starts with one (theirs start `sk-`).
const PROVIDER_ID_PREFIXES: &[&str] = &[
    "msg_",
    "req_",
    "toolu_",
    "srvtoolu_",
    "msgbatch_",
    "chatcmpl-",
    "call_",
    "resp_",
    "rs_",
    "fc_",
];

fn is_high_entropy(tok: &str, before: &str) -> bool {
    if tok.starts_with("REDACTED") || before.ends_with(MARKER_PREFIX) {
        return false;
    }
    let core = tok.trim_end_matches('=');
    // Hex (git SHAs, sha256 sums, Cargo.lock checksums) and UUIDs.
    if core.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return false;
    }
    // Lockfile integrity hashes: `sha512-…` (npm, yarn, pnpm, nix), `h1:…` (go.sum).
    let lower_before = before
        .get(before.len().saturating_sub(8)..)
        .unwrap_or("")
        .to_ascii_lowercase();
    if lower_before.ends_with("h1:")
        || lower_before.ends_with("sha256:")
        || lower_before.ends_with("sha512:")
    {
        return false;
    }
    let lower_tok = core.to_ascii_lowercase();
    if ["sha1-", "sha256-", "sha384-", "sha512-", "md5-"]
        .iter()
        .any(|p| lower_tok.starts_with(p))
    {
        return false;
    }
    // ULIDs: 26 Crockford base32 characters in one case (agentops's run
    // ids are lower case), the first a digit 0–7 (the time's top bits).
    let crockford = |upper: bool| {
        core.bytes().all(|b| {
            b.is_ascii_digit()
                || if upper {
                    b.is_ascii_uppercase() && !b"ILOU".contains(&b)
                } else {
                    b.is_ascii_lowercase() && !b"ilou".contains(&b)
                }
        })
    };
    if core.len() == 26
        && matches!(core.as_bytes()[0], b'0'..=b'7')
        && (crockford(true) || crockford(false))
    {
        return false;
    }
    // Ids that model providers give responses, requests and tool calls:
    // handles that name a thing, not credentials (and the span attributes
    // `gen_ai.response.id` and `gen_ai.tool.call.id` carry them).
    if let Some(rest) = PROVIDER_ID_PREFIXES
        .iter()
        .find_map(|p| core.strip_prefix(p))
        && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return false;
    }
    // Paths: segments, one of them an ordinary word. Short segments are
    // never secret; a path whose long segments are each harmless on their
    // own (the run id in `agentops/run/<ULID>`) is not either.
    if core.contains('/') {
        let segs: Vec<&str> = core.split('/').filter(|s| !s.is_empty()).collect();
        let wordy = segs.iter().any(|s| {
            s.len() >= 2
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'-' || b == b'_' || b == b'.')
        });
        if wordy && !segs.iter().any(|s| s.len() >= 24 && is_high_entropy(s, "")) {
            return false;
        }
    }
    let has_digit = core.bytes().any(|b| b.is_ascii_digit());
    let has_upper = core.bytes().any(|b| b.is_ascii_uppercase());
    let has_lower = core.bytes().any(|b| b.is_ascii_lowercase());
    if !has_digit || !(has_upper || has_lower) {
        return false;
    }
    // Identifiers: snake_case / kebab-case words with a number or two, or
    // words and numbers each on their own (`learning-20260101-bench-5798`,
    // agentops's entry ids: a secret mixes letters and digits inside its
    // parts).
    let digits = core.bytes().filter(u8::is_ascii_digit).count();
    if core.contains('_') || core.contains('-') {
        let words: Vec<&str> = core.split(['_', '-']).filter(|w| !w.is_empty()).collect();
        let lettered = |w: &str| w.bytes().all(|b| b.is_ascii_lowercase());
        let plain = |w: &str| lettered(w) || w.bytes().all(|b| b.is_ascii_digit());
        let split_apart =
            words.iter().all(|w| plain(w)) && words.iter().filter(|w| lettered(w)).count() >= 2;
        if words.len() >= 3 && (digits * 10 < core.len() || split_apart) {
            return false;
        }
    }
    if decodes_to_text(core) {
        return false;
    }
    let len = core.len().min(64) as f64;
    shannon_bits_per_char(core) >= 0.84 * len.log2()
}

/// The built-in rules, none compiled yet.
fn builtin_rules() -> Vec<Rule> {
    BUILTIN
        .iter()
        .map(|(id, pat, group, check, triggers)| Rule {
            id: (*id).to_owned(),
            pattern: (*pat).to_owned(),
            re: OnceLock::new(),
            group: *group,
            check: *check,
            triggers,
            gate: gate_for(id),
        })
        .collect()
}

/// The necessary condition of the rules whose triggers are common words or
/// characters (every path has a `.`): without it, an ordinary tool call
/// would compile their regexes, most of a hook's own work.
fn gate_for(id: &str) -> Option<fn(&str) -> bool> {
    match id {
        "discord-bot-token" => Some(has_dotted_token),
        "twilio-key" => Some(has_sk_and_32_hex),
        "connection-string-password" => Some(|t| t.contains('@')),
        _ => None,
    }
}

fn discord_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// A `.` after at least 24 token bytes, then 6 token bytes and a `.`: the
/// middle of a Discord bot token.
fn has_dotted_token(text: &str) -> bool {
    let b = text.as_bytes();
    let mut run = 0usize;
    for (i, &c) in b.iter().enumerate() {
        if c == b'.' {
            if run >= 24
                && b.len() > i + 7
                && b[i + 1..i + 7].iter().all(|&x| discord_byte(x))
                && b[i + 7] == b'.'
            {
                return true;
            }
            run = 0;
        } else if discord_byte(c) {
            run += 1;
        } else {
            run = 0;
        }
    }
    false
}

/// `SK` followed by 32 hex digits: a Twilio key.
fn has_sk_and_32_hex(text: &str) -> bool {
    text.match_indices("SK").any(|(i, _)| {
        let rest = &text.as_bytes()[i + 2..];
        rest.len() >= 32 && rest[..32].iter().all(u8::is_ascii_hexdigit)
    })
}

static BUILTIN_REDACTOR: LazyLock<Redactor> = LazyLock::new(|| Redactor {
    rules: builtin_rules(),
});

/// The id of the last rule: random-looking tokens, found by a scanner rather
/// than a regex (it runs on every text).
const HIGH_ENTROPY: &str = "high-entropy";

/// Whether `b` can be part of a high-entropy token.
fn token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'_' | b'-')
}

/// Redacts `text` with the built-in rules.
pub fn redact(text: &str) -> Cow<'_, str> {
    BUILTIN_REDACTOR.redact(text)
}

/// Redacts every string in a JSON value with the built-in rules, and replaces
/// string values under sensitive keys (`password`, `api_key`, `*_token`, …).
pub fn redact_json(value: &mut serde_json::Value) {
    BUILTIN_REDACTOR.redact_json(value);
}

/// The built-in rule set.
pub fn builtin() -> &'static Redactor {
    &BUILTIN_REDACTOR
}

/// Whether a JSON object key holds a structural id: of a message, a
/// response, a tool call, a session. Such ids are random by design (a
/// llama.cpp server gives 32 random letters and digits), are not secrets, and
/// a resumed conversation must carry them verbatim; so their values are
/// checked against the known secret shapes only, not the high-entropy guess.
pub fn is_structural_id_key(key: &str) -> bool {
    matches!(
        key,
        "id" | "tool_use_id"
            | "tool_call_id"
            | "call_id"
            | "item_id"
            | "response_id"
            | "previous_response_id"
            | "message_id"
            | "request_id"
            | "session_id"
            | "thread_id"
            | "turn_id"
            | "span_id"
            | "parent_span_id"
    )
}

/// Whether a JSON object key names a secret.
pub fn is_sensitive_key(key: &str) -> bool {
    let norm: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    const ENDINGS: &[&str] = &[
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "apikey",
        "accesskey",
        "privatekey",
        "credential",
        "credentials",
        "authorization",
        "cookie",
        "sessionkey",
        "secretkey",
    ];
    norm == "auth" || ENDINGS.iter().any(|e| norm.ends_with(e))
}

impl Redactor {
    /// The built-in rules followed by `extra` patterns (each a regex whose
    /// whole match, or group 1 when present, is the secret).
    pub fn with_extra(extra: &[String]) -> Result<Self, PatternError> {
        let mut rules: Vec<Rule> = Vec::with_capacity(BUILTIN.len() + extra.len());
        for (i, pat) in extra.iter().enumerate() {
            let re = Regex::new(pat).map_err(|e| PatternError {
                pattern: pat.clone(),
                reason: e.to_string(),
            })?;
            let group = re.captures_len() > 1;
            rules.push(Rule {
                id: format!("custom-{}", i + 1),
                pattern: pat.clone(),
                re: OnceLock::from(Some(re)),
                group,
                check: None,
                triggers: &[],
                gate: None,
            });
        }
        rules.extend(BUILTIN_REDACTOR.rules.iter().cloned());
        // Custom rules run first, so a custom shape is named by its own rule.
        Ok(Self { rules })
    }

    /// The ids of the rules, in the order they run.
    pub fn rule_ids(&self) -> impl Iterator<Item = &str> {
        self.rules
            .iter()
            .map(|r| r.id.as_str())
            .chain(std::iter::once(HIGH_ENTROPY))
    }

    /// Replaces every secret in `text`; borrows when nothing was found.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        self.run(text, None, true)
    }

    /// [`Self::redact`] without the high-entropy guess: only secrets of a
    /// known shape. For structural ids (see [`is_structural_id_key`]), which
    /// are random by design and which a resume depends on.
    pub fn redact_known<'t>(&self, text: &'t str) -> Cow<'t, str> {
        self.run(text, None, false)
    }

    /// [`Self::redact`] and [`Self::findings`] in one pass.
    pub fn redact_and_find<'t>(&self, text: &'t str) -> (Cow<'t, str>, Vec<Finding>) {
        let mut found = Vec::new();
        let out = self.run(text, Some(&mut found), true);
        (out, found)
    }

    /// Where secrets are in `text`, by rule and line; never the secrets.
    pub fn findings(&self, text: &str) -> Vec<Finding> {
        let mut found = Vec::new();
        let _ = self.run(text, Some(&mut found), true);
        found.sort_by(|a, b| a.line.cmp(&b.line).then_with(|| a.rule.cmp(&b.rule)));
        found
    }

    fn run<'t>(
        &self,
        text: &'t str,
        mut found: Option<&mut Vec<Finding>>,
        entropy: bool,
    ) -> Cow<'t, str> {
        let mut cur: Cow<'t, str> = Cow::Borrowed(text);
        let lower = text.to_ascii_lowercase();
        for rule in &self.rules {
            if !rule.may_match(&cur, &lower) {
                continue;
            }
            let Some(re) = rule.regex() else { continue };
            let mut hits: Vec<usize> = Vec::new();
            let replaced = {
                let src: &str = &cur;
                let out = re.replace_all(src, |caps: &Captures<'_>| {
                    replace_one(rule, src, caps, &mut hits)
                });
                match out {
                    Cow::Borrowed(_) => None,
                    Cow::Owned(s) => Some(s),
                }
            };
            if let Some(f) = found.as_deref_mut() {
                for off in &hits {
                    let line = 1 + cur.as_bytes()[..*off]
                        .iter()
                        .filter(|&&b| b == b'\n')
                        .count();
                    f.push(Finding {
                        rule: rule.id.clone(),
                        line,
                    });
                }
            }
            if let Some(s) = replaced {
                cur = Cow::Owned(s);
            }
        }
        if entropy && let Some(s) = scan_high_entropy(&cur, found) {
            cur = Cow::Owned(s);
        }
        cur
    }

    /// Redacts every string in a JSON value in place.
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) => {
                if let Cow::Owned(r) = self.redact(s) {
                    *s = r;
                }
            }
            serde_json::Value::Array(items) => {
                for v in items {
                    self.redact_json(v);
                }
            }
            serde_json::Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if is_sensitive_key(k)
                        && let serde_json::Value::String(s) = v
                        && assignment_value_is_secret(s, "")
                    {
                        *s = format!("{MARKER_PREFIX}sensitive-field]");
                        continue;
                    }
                    if is_structural_id_key(k)
                        && let serde_json::Value::String(s) = v
                        && s.len() <= 256
                        && !s.bytes().any(|b| b.is_ascii_whitespace())
                    {
                        if let Cow::Owned(r) = self.redact_known(s) {
                            *s = r;
                        }
                        continue;
                    }
                    self.redact_json(v);
                }
            }
            serde_json::Value::Null | serde_json::Value::Bool(_) | serde_json::Value::Number(_) => {
            }
        }
    }
}

/// Replaces high-entropy tokens (runs of 24+ token bytes that pass
/// [`is_high_entropy`]); `None` when there are none.
fn scan_high_entropy(text: &str, found: Option<&mut Vec<Finding>>) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut hits = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !token_byte(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && token_byte(bytes[i]) {
            i += 1;
        }
        // Token bytes are ASCII, so these are char boundaries.
        if i - start >= 24 && is_high_entropy(&text[start..i], &text[..start]) {
            let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
            o.push_str(&text[copied..start]);
            o.push_str(MARKER_PREFIX);
            o.push_str(HIGH_ENTROPY);
            o.push(']');
            copied = i;
            hits.push(start);
        }
    }
    if let Some(f) = found {
        for off in hits {
            let line = 1 + bytes[..off].iter().filter(|&&b| b == b'\n').count();
            f.push(Finding {
                rule: HIGH_ENTROPY.to_owned(),
                line,
            });
        }
    }
    let mut o = out?;
    o.push_str(&text[copied..]);
    Some(o)
}

fn replace_one(rule: &Rule, src: &str, caps: &Captures<'_>, hits: &mut Vec<usize>) -> String {
    let Some(whole) = caps.get(0) else {
        return String::new();
    };
    let target = if rule.group {
        // The first group that took part is the secret.
        match caps.iter().skip(1).flatten().next() {
            Some(g) => g,
            None => return whole.as_str().to_owned(),
        }
    } else {
        whole
    };
    let before = &src[..target.start()];
    if let Some(check) = rule.check
        && !check(target.as_str(), before)
    {
        return whole.as_str().to_owned();
    }
    if target.as_str().starts_with(MARKER_PREFIX) {
        return whole.as_str().to_owned();
    }
    hits.push(target.start());
    let newlines = target.as_str().bytes().filter(|&b| b == b'\n').count();
    let mut out = String::with_capacity(whole.len());
    out.push_str(&src[whole.start()..target.start()]);
    out.push_str(MARKER_PREFIX);
    out.push_str(&rule.id);
    out.push(']');
    for _ in 0..newlines {
        out.push('\n');
    }
    out.push_str(&src[target.end()..whole.end()]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use proptest::prelude::*;

    #[test]
    fn every_builtin_pattern_compiles() {
        assert_eq!(BUILTIN_REDACTOR.rules.len(), BUILTIN.len());
        for r in &BUILTIN_REDACTOR.rules {
            assert!(r.regex().is_some(), "{} does not compile", r.id);
        }
    }

    #[test]
    fn ordinary_text_compiles_no_rule() {
        // Fresh rules: `with_extra` shares the ones other tests compiled.
        let r = Redactor {
            rules: builtin_rules(),
        };
        for text in [
            "cargo test -p agentops-store --test sqlite",
            // What every tool call carries: paths, ids, a task with `sk` in it.
            "/tmp/.tmpVuPixT/repo/src/lib.rs",
            "cargo test -p shop-auth && ask the disk task runner",
            "toolu_01ABCdef.json",
            "https://docs.rs/regex/latest/regex/",
        ] {
            assert_eq!(r.redact(text), text);
        }
        let compiled: Vec<&str> = r
            .rules
            .iter()
            .filter(|r| r.re.get().is_some())
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(compiled, Vec::<&str>::new());
    }

    #[test]
    fn replaces_only_the_secret_in_shapes() {
        assert_eq!(
            redact("export DB_PASSWORD=hunter2hunter2 && run"),
            "export DB_PASSWORD=[REDACTED:sensitive-assignment] && run"
        );
        assert_eq!(
            redact("postgres://app:s3cr3tpass@db.internal:5432/app"),
            "postgres://app:[REDACTED:connection-string-password]@db.internal:5432/app"
        );
        assert_eq!(
            redact("\"client_secret\": \"s3cr3t-v4lue\""),
            "\"client_secret\": \"[REDACTED:sensitive-assignment]\""
        );
        assert_eq!(
            redact("Authorization: Bearer abcdef0123456789"),
            "Authorization: Bearer [REDACTED:bearer-token]"
        );
    }

    #[test]
    fn keeps_line_numbers_across_multiline_secrets() {
        let text = "a\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nAAAA\n-----END RSA PRIVATE KEY-----\nghp_0123456789abcdefghijklmnopqrstuvwxyzAB\n";
        let out = redact(text);
        assert_eq!(out.lines().count(), text.lines().count());
        assert_eq!(
            builtin().findings(text),
            vec![
                Finding {
                    rule: "private-key".into(),
                    line: 2
                },
                Finding {
                    rule: "github-token".into(),
                    line: 6
                },
            ]
        );
    }

    #[test]
    fn provider_ids_and_run_branches_are_not_secrets() {
        for s in [
            "msg_01XFDUDYJgAACzvnptvVoYEL",
            "req_011CQSXAhg4Ygn8HKudpWnf2",
            "toolu_01A09q90qw90lq917835lq9",
            "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
            "call_abc123XYZ456def789GHI0",
            "agentops/run/01JCQ4V1ZG8Y2X3W4V5T6S7R8Q",
            "refs/heads/agentops/run/01JCQ4V1ZG8Y2X3W4V5T6S7R8Q",
            // A run id as agentops writes it, in the message a pause leaves.
            "gate `deploy` waits for a person: agentops approve 01m8vjgzsm28rcqzwv46f38425 --gate deploy",
        ] {
            assert_eq!(redact(s), s);
        }
        // Still secrets: a random token in a path segment, a credential with
        // an id-like prefix but not an id's characters, provider keys.
        for s in [
            "https://hooks.example.com/services/cb/aB3dE5fG7hJ9kL1mN3pQ5rS7tV9wX",
            "call_aB3dE5fG7hJ9kL1mN3pQ5rS7/tV9+wX=",
            "sk-ant-api03-aB3dE5fG7hJ9kL1mN3pQ5rS7tV9wX1yZ3",
            "sk-proj-aB3dE5fG7hJ9kL1mN3pQ5rS7tV9wX1yZ3bC5",
            // 26 characters of mixed case are not a ULID.
            "token 01m8VjGzsM28rCqzWv46F38425",
        ] {
            assert!(redact(s).contains("[REDACTED:"), "{s} kept");
        }
    }

    #[test]
    fn counts_and_code_are_not_secrets() {
        for s in [
            "max_tokens=4000",
            "\"input_tokens\": 1234",
            "tokenizer = \"o200k\"",
            "password: ${DB_PASSWORD}",
            "let token = get_token();",
            "PASSWORD=",
            "api_key = \"<your key here>\"",
        ] {
            assert_eq!(redact(s), s);
        }
    }

    #[test]
    fn json_values_under_sensitive_keys() {
        let mut v = serde_json::json!({
            "api_key": "abc123xyz",
            "input_tokens": 10,
            "nested": [{"password": "pw-value-1"}, {"note": "use ghp_0123456789abcdefghijklmnopqrstuvwxyzAB"}],
            "tokenizer": "o200k"
        });
        redact_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({
                "api_key": "[REDACTED:sensitive-field]",
                "input_tokens": 10,
                "nested": [{"password": "[REDACTED:sensitive-field]"}, {"note": "use [REDACTED:github-token]"}],
                "tokenizer": "o200k"
            })
        );
    }

    #[test]
    fn extra_patterns() {
        let r = Redactor::with_extra(&["acme-[0-9]{6}".to_owned(), "pin: ([0-9]{4})".to_owned()])
            .unwrap();
        assert_eq!(
            r.redact("id acme-123456 pin: 1234"),
            "id [REDACTED:custom-1] pin: [REDACTED:custom-2]"
        );
        let err = Redactor::with_extra(&["(".to_owned()]).err().unwrap();
        assert_eq!(err.pattern, "(");
    }

    proptest! {
        #[test]
        fn redaction_is_idempotent(s in "[ -~\n]{0,200}") {
            let once = redact(&s).into_owned();
            let twice = redact(&once).into_owned();
            prop_assert_eq!(once, twice);
        }

        /// A gate never hides a match: wherever the rule's regex matches,
        /// its gate holds.
        #[test]
        fn gates_are_necessary(
            before in "[ -~]{0,30}",
            token in "(?:[MNO][A-Za-z0-9_-]{23,25}\\.[A-Za-z0-9_-]{6}\\.[A-Za-z0-9_-]{27,38}|SK[0-9a-fA-F]{32}|[a-z]{2,8}://[a-z]{0,8}:[a-z0-9]{1,12}@[a-z]{1,8})",
            after in "[ -~]{0,30}",
        ) {
            let text = format!("{before}{token}{after}");
            for rule in &BUILTIN_REDACTOR.rules {
                if let (Some(gate), Some(re)) = (rule.gate, rule.regex())
                    && re.is_match(&text)
                {
                    prop_assert!(gate(&text), "{} gate refused {text:?}", rule.id);
                }
            }
        }

        #[test]
        fn redaction_keeps_line_count(s in "[ -~\n]{0,200}") {
            prop_assert_eq!(redact(&s).matches('\n').count(), s.matches('\n').count());
        }
    }
}
