//! What the HTTP front ends (the MCP server's Streamable HTTP, the
//! dashboard) check before serving: a loopback `Host` (DNS rebinding), a
//! token compared in constant time, and fresh tokens.

/// Whether a `Host` header names this machine's loopback (any port).
pub fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    matches!(name, "localhost" | "127.0.0.1" | "::1")
}

/// Constant-time comparison, so a token cannot be guessed byte by byte.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A fresh random token (256 bits, hex); `what` names it in the error.
pub fn new_token(what: &str) -> Result<String, String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| format!("no randomness for {what}: {e}"))?;
    Ok(agentops_core::ids::hex(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_and_others() {
        for h in [
            "127.0.0.1:8080",
            "localhost",
            "localhost:1",
            "[::1]:9",
            "[::1]",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in ["evil.example", "127.0.0.1.evil.example:80", "[::2]:9", ""] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd") && !same_secret(b"abc", b"ab"));
        let t = new_token("a test").unwrap_or_default();
        assert_eq!(t.len(), 64);
    }
}
