//! The checks of keys whose values need more than their type and range. Each
//! returns what is wrong, without the key (the caller names it).
//!
//! Each takes `&mut T` of its key's exact type (the table's setter is generic
//! over it), hence `&mut Vec` and `&mut String`.
#![allow(clippy::ptr_arg)]

use std::collections::BTreeMap;

use super::PriceOverride;

pub(super) fn store_url(url: &mut Option<String>) -> Result<(), String> {
    let Some(url) = url else { return Ok(()) };
    if url.trim().is_empty() {
        return Err(
            "is empty; allowed: a SQLite file path, a sqlite:// URL or a postgres:// URL".into(),
        );
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return postgres_url(url);
    }
    if let Some((scheme, _)) = url.split_once("://")
        && scheme != "sqlite"
    {
        return Err(format!(
            "unknown scheme `{scheme}://`; allowed: a SQLite file path, a sqlite:// URL or a postgres:// URL"
        ));
    }
    Ok(())
}

/// A team store's URL: never with a password in it (it would sit in a
/// config file or a shell history; PGPASSWORD or ~/.pgpass hold it).
fn postgres_url(url: &str) -> Result<(), String> {
    if super::url_has_password(url) {
        return Err(
            "has a password in it, which agentops never reads from its configuration; remove it and set PGPASSWORD or add it to ~/.pgpass (PGPASSFILE)"
                .into(),
        );
    }
    Ok(())
}

pub(super) fn redaction_patterns(p: &mut Vec<String>) -> Result<(), String> {
    crate::redact::Redactor::with_extra(p)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

pub(super) fn branch_name(b: &mut Option<String>) -> Result<(), String> {
    match b {
        Some(b) if !super::valid_branch_name(b) => Err(format!(
            "`{b}` is not a valid branch name; allowed: letters, digits, `/`, `-`, `_`, `.` (no `..`, no leading `-` or `/`)"
        )),
        _ => Ok(()),
    }
}

pub(super) fn regexes(list: &mut Vec<String>) -> Result<(), String> {
    for pat in list.iter() {
        if let Err(e) = regex::Regex::new(pat) {
            return Err(format!("`{pat}` is not a valid regular expression: {e}"));
        }
    }
    Ok(())
}

pub(super) fn window_sizes(w: &mut BTreeMap<String, u64>) -> Result<(), String> {
    match w.values().find(|t| !(1_000..=10_000_000).contains(*t)) {
        Some(t) => Err(format!("{t} is out of range; allowed: 1000 to 10000000")),
        None => Ok(()),
    }
}

fn is_http(v: &str) -> Result<(), String> {
    if v.starts_with("http://") || v.starts_with("https://") {
        Ok(())
    } else {
        Err(format!("`{v}` is not an http:// or https:// URL"))
    }
}

/// An http(s) base URL, kept without its trailing `/`.
pub(super) fn base_url(v: &mut String) -> Result<(), String> {
    is_http(v)?;
    let trimmed = v.trim_end_matches('/').len();
    v.truncate(trimmed);
    Ok(())
}

pub(super) fn optional_url(v: &mut Option<String>) -> Result<(), String> {
    v.as_deref().map_or(Ok(()), is_http)
}

pub(super) fn optional_env_var_name(v: &mut Option<String>) -> Result<(), String> {
    v.as_mut().map_or(Ok(()), env_var_name)
}

/// `""`, `openai:MODEL` or `model2vec:PATH`.
pub(super) fn embeddings(v: &mut String) -> Result<(), String> {
    let allowed = "allowed: \"\" (off), \"openai:MODEL\" or \"model2vec:PATH\"";
    if v.is_empty() {
        return Ok(());
    }
    match v.split_once(':') {
        Some(("openai" | "model2vec", rest)) if !rest.trim().is_empty() => Ok(()),
        Some(("openai" | "model2vec", _)) => Err(format!("`{v}` names no model; {allowed}")),
        _ => Err(format!("`{v}` is not an embedding provider; {allowed}")),
    }
}

pub(super) fn env_var_name(v: &mut String) -> Result<(), String> {
    let is_name = !v.is_empty()
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !v.starts_with(|c: char| c.is_ascii_digit());
    if is_name {
        Ok(())
    } else {
        Err("not an environment variable name; put the key in the environment and name the variable here (never the key itself)".into())
    }
}

pub(super) fn otlp_protocol(p: &mut String) -> Result<(), String> {
    if p == "http/protobuf" || p == "http/json" {
        Ok(())
    } else {
        Err(format!(
            "`{p}` is not supported; allowed: \"http/protobuf\" or \"http/json\" (gRPC is not offered)"
        ))
    }
}

pub(super) fn age(w: &mut String) -> Result<(), String> {
    if crate::time::parse_age(w).is_none_or(|us| us <= 0) {
        Err(format!(
            "`{w}` is not an age; allowed: an age such as 24h, 7d, 30m"
        ))
    } else {
        Ok(())
    }
}

pub(super) fn check_price(p: &mut PriceOverride) -> Result<(), String> {
    let all = [Some(p.input), Some(p.output), p.cache_read, p.cache_write];
    if all.iter().flatten().any(|v| !(v.is_finite() && *v >= 0.0)) {
        Err("prices must be numbers ≥ 0 (USD per million tokens)".into())
    } else {
        Ok(())
    }
}
